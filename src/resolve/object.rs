//! One object into the resolution (`add_object`; `add_member` for an archive member): an
//! ELF object is parsed, unless loading did it ahead, and its symbols added (`rules.rs`).
//! An object with LTO code (GCC's `.gnu.lto_*` sections, LLVM bitcode) is offered to the
//! LTO plugin, whose stand-in object of the IR symbols takes its place; without a plugin a
//! fat object links its native code, and a slim one or bitcode is an error that says how
//! to link it.

use super::Resolver;
use crate::input::elf::{classify, ElfKind, ObjectFile};
use crate::symbols::FileId;
use anyhow::{bail, Context, Result};

impl Resolver {
    /// Adds an archive member: an object (ELF or bitcode); a shared object is an error.
    pub(super) fn add_member(
        &mut self,
        name: String,
        data: &'static [u8],
        member: u32,
        parsed: Option<Result<ObjectFile>>,
    ) -> Result<()> {
        if crate::input::is_bitcode(data) {
            return self.add_object(name, data, member, None);
        }
        match classify(data).with_context(|| name.clone())? {
            ElfKind::Relocatable => self.add_object(name, data, member, parsed),
            ElfKind::Shared => bail!("{name}: shared object inside an archive"),
        }
    }

    /// Adds an object; `parsed` is its `ObjectFile::parse` result if that ran ahead.
    pub(super) fn add_object(
        &mut self,
        name: String,
        data: &'static [u8],
        member: u32,
        parsed: Option<Result<ObjectFile>>,
    ) -> Result<()> {
        let bitcode = crate::input::is_bitcode(data);
        let mut parsed = match bitcode {
            true => None,
            false => Some(
                parsed
                    .unwrap_or_else(|| ObjectFile::parse(data))
                    .with_context(|| name.clone())?,
            ),
        };
        if bitcode || parsed.as_ref().is_some_and(|o| o.lto) {
            // Once the plugin has compiled, its objects stand for the IR ones.
            if crate::lto::compiled(data) {
                return Ok(());
            }
            if let Some((handle, obj, stand_in)) = self.offer_to_plugin(&name, data)? {
                self.ir_files
                    .push((FileId(self.objects.len() as u32), handle));
                return self.add_parsed(name, stand_in, member, obj);
            }
            // GCC marks an object with no native code (`-fno-fat-lto-objects`, the default);
            // a fat object without a plugin links its native code.
            let slim = parsed
                .as_ref()
                .is_none_or(|o| o.global_names.iter().any(|(n, _)| *n == b"__gnu_lto_slim"));
            if bitcode {
                bail!(
                    "{name}: file is LLVM bitcode (compiled with clang -flto); link through clang, \
                     which passes its LTO plugin (LLVMgold.so) with -plugin"
                );
            }
            if slim {
                bail!(
                    "{name}: file contains only LTO intermediate code (compiled with -flto); \
                     link through the compiler driver (which passes its LTO plugin with \
                     -plugin) or build with -ffat-lto-objects"
                );
            }
        }
        let obj = parsed.take().expect("parsed above");
        self.add_parsed(name, data, member, obj)
    }

    /// Offers an object with LTO code to the plugin (if there is one): if claimed, the
    /// plugin's handle and the stand-in object of its symbols (see `lto`).
    fn offer_to_plugin(
        &mut self,
        name: &str,
        data: &'static [u8],
    ) -> Result<Option<(usize, ObjectFile, &'static [u8])>> {
        if !crate::lto::claiming()? {
            return Ok(None);
        }
        let Some((handle, stand_in)) = crate::lto::claim(name, data)? else {
            return Ok(None);
        };
        let stand_in: &'static [u8] = stand_in.leak();
        let obj = ObjectFile::parse(stand_in)
            .with_context(|| format!("{name}: the LTO plugin's symbols"))?;
        Ok(Some((handle, obj, stand_in)))
    }
}
