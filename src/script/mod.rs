//! GNU ld linker scripts: the language as the GNU ld manual ("Linker Scripts") documents it.
//!
//! [`parse`] turns a script's text into a [`Script`]: the commands that name input files
//! (`INPUT`, `GROUP`, `SEARCH_DIR`: expanded by `input::search`) and the commands that shape
//! the output (`SECTIONS`, `MEMORY`, `PHDRS`, `ENTRY`, assignments, `ASSERT`: laid out by
//! `layout::scripted`). Expressions are evaluated by [`eval`]. Errors carry the line and column of the
//! offending text.

pub mod eval;
mod parse;

pub use parse::{parse, parse_with};

/// weld's default layout as a script (see `default.ld`), for position-independent output
/// (`pic`: a PIE or a shared object) or not.
pub fn default_text(pic: bool) -> String {
    let base = if pic { "0" } else { "0x400000" };
    include_str!("default.ld").replace("@BASE@", base)
}

/// `script` applied to the default script: its sections inserted where its `INSERT` says
/// (or, with no `SECTIONS`, just its other commands).
pub fn with_default(pic: bool, script: Script) -> anyhow::Result<Script> {
    let mut base = parse(&default_text(pic), "(weld's default script)")
        .map_err(|e| anyhow::anyhow!("internal error: weld's default script: {e}"))?;
    let mut script = script;
    if let (Some((after, anchor)), Some(commands)) = (script.insert.take(), script.sections.take())
    {
        let sections = base
            .sections
            .as_mut()
            .expect("the default script has SECTIONS");
        let at = sections
            .iter()
            .position(|c| matches!(c, SectionsCommand::Output(o) if o.name == anchor))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: INSERT {} {anchor}: weld's default layout has no output section {anchor}",
                    script.file,
                    if after { "AFTER" } else { "BEFORE" }
                )
            })?;
        let at = if after { at + 1 } else { at };
        sections.splice(at..at, commands);
    }
    let file = std::mem::take(&mut script.file);
    base.append(script).map_err(anyhow::Error::msg)?;
    base.file = file;
    Ok(base)
}

/// What weld cannot lay out yet: refused when the script is read, never ignored.
pub fn check(script: &Script) -> anyhow::Result<()> {
    let file = &script.file;
    if script.sections.is_none() {
        if let Some(r) = script.memory.first() {
            anyhow::bail!("{file}:{}: MEMORY without SECTIONS places nothing", r.pos);
        }
        if let Some(p) = script.phdrs.first() {
            anyhow::bail!("{file}:{}: PHDRS without SECTIONS places nothing", p.pos);
        }
    }
    let names: Vec<&str> = script.phdrs.iter().map(|p| p.name.as_str()).collect();
    for o in script.outputs() {
        for p in &o.phdrs {
            if p != "NONE" && !names.contains(&p.as_str()) {
                anyhow::bail!(
                    "{file}:{}: section {} names program header {p}, which PHDRS does not define",
                    o.pos,
                    o.name
                );
            }
        }
        for r in o.region.iter().chain(&o.lma_region) {
            if find_region(script, r).is_none() {
                anyhow::bail!(
                    "{file}:{}: section {} names memory region {r}, which MEMORY does not define",
                    o.pos,
                    o.name
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn find_region<'a>(script: &'a Script, name: &str) -> Option<&'a Region> {
    let name = script
        .region_aliases
        .iter()
        .find(|(alias, _)| alias == name)
        .map_or(name, |(_, r)| r.as_str());
    script.memory.iter().find(|r| r.name == name)
}

/// `-Ttext=ADDR` and the like: the named output section's address, as if the script gave
/// it one; a section the script does not name gets a description of its own at the end.
pub fn set_section_starts(script: &mut Script, starts: &[(String, u64)]) {
    for (name, addr) in starts {
        let sections = script.sections.get_or_insert_with(Vec::new);
        let found = sections.iter_mut().find_map(|c| match c {
            SectionsCommand::Output(o) if &o.name == name => Some(o),
            _ => None,
        });
        match found {
            Some(o) => o.addr = Some(Expr::Num(*addr)),
            None => {
                let mut desc = OutputDesc::new(name.clone(), Pos::default());
                desc.addr = Some(Expr::Num(*addr));
                desc.commands.push(OutputCommand::Input(InputDesc {
                    keep: false,
                    file: "*".into(),
                    exclude_files: Vec::new(),
                    sort_files: false,
                    sections: vec![SectionPattern {
                        exclude_files: Vec::new(),
                        pattern: name.clone(),
                        sort: Sort::None,
                    }],
                    pos: Pos::default(),
                }));
                sections.push(SectionsCommand::Output(Box::new(desc)));
            }
        }
    }
}

/// One file a `GROUP` or `INPUT` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A path as written in the script.
    File(String),
    /// `-lNAME`, with `name` = "NAME" (or ":FILE" for `-l:FILE`).
    Library(String),
}

/// An [`Entry`] with whether it was inside `AS_NEEDED(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInput {
    pub entry: Entry,
    pub as_needed: bool,
}

/// The commands that name input files, in script order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputCommand {
    /// `GROUP(...)`: the files are searched repeatedly as a group.
    Group(Vec<ScriptInput>),
    /// `INPUT(...)`: the files are linked as if named on the command line.
    Input(Vec<ScriptInput>),
    /// `SEARCH_DIR(path)`.
    SearchDir(String),
}

/// Where a piece of script text came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A parsed script. Several scripts (a `-T` script, implicit scripts among the inputs) are
/// merged with [`Script::append`].
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub inputs: Vec<InputCommand>,
    /// `ENTRY(symbol)`.
    pub entry: Option<String>,
    /// `SECTIONS { ... }`; `None` when the script has none.
    pub sections: Option<Vec<SectionsCommand>>,
    /// `INSERT AFTER|BEFORE name` after the `SECTIONS`: (after?, anchor).
    pub insert: Option<(bool, String)>,
    pub memory: Vec<Region>,
    pub phdrs: Vec<Phdr>,
    /// Assignments and `ASSERT`s outside `SECTIONS`, in order.
    pub top: Vec<SectionsCommand>,
    /// `REGION_ALIAS(alias, region)`.
    pub region_aliases: Vec<(String, String)>,
    /// `EXTERN(sym ...)`: undefined symbols, as `-u` makes them.
    pub externs: Vec<String>,
    /// `NOCROSSREFS(a b ...)` (false) and `NOCROSSREFS_TO(to from ...)` (true).
    pub nocrossrefs: Vec<(bool, Vec<String>)>,
    /// Which file each part came from (for messages), and the file's text.
    pub file: String,
}

impl Script {
    /// Whether the script shapes the output at all (beyond naming inputs).
    pub fn shapes_output(&self) -> bool {
        self.sections.is_some()
            || !self.externs.is_empty()
            || !self.nocrossrefs.is_empty()
            || !self.memory.is_empty()
            || !self.phdrs.is_empty()
            || !self.top.is_empty()
            || self.entry.is_some()
    }

    /// Adds `other`'s output commands to this one's (its input commands are the search's).
    pub fn append(&mut self, other: Script) -> Result<(), String> {
        if other.sections.is_some() {
            if self.sections.is_some() {
                return Err(format!(
                    "{}: a second SECTIONS command (the first is in {}): weld takes one",
                    other.file, self.file
                ));
            }
            self.sections = other.sections;
            self.insert = other.insert;
            self.file = other.file;
        }
        if other.entry.is_some() {
            self.entry = other.entry;
        }
        self.memory.extend(other.memory);
        self.phdrs.extend(other.phdrs);
        self.top.extend(other.top);
        self.region_aliases.extend(other.region_aliases);
        self.externs.extend(other.externs);
        self.nocrossrefs.extend(other.nocrossrefs);
        Ok(())
    }

    /// Every symbol the script assigns, with how.
    pub fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        fn walk<'a>(commands: &'a [SectionsCommand], out: &mut Vec<&'a Assignment>) {
            for c in commands {
                match c {
                    SectionsCommand::Assign(a) => out.push(a),
                    SectionsCommand::Output(o) => {
                        for c in &o.commands {
                            if let OutputCommand::Assign(a) = c {
                                out.push(a);
                            }
                        }
                    }
                    SectionsCommand::Assert(..) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.top, &mut out);
        if let Some(sections) = &self.sections {
            walk(sections, &mut out);
        }
        out.into_iter().filter(|a| a.symbol != ".")
    }

    /// Each symbol the script assigns, with its final value if that is a plain number
    /// assigned outside output sections (`None`: an address, or not known before layout).
    pub fn final_values(&self) -> Vec<(&str, Option<u64>)> {
        fn value(a: &Assignment, outside: bool) -> Option<u64> {
            (outside && a.op.is_none() && eval::is_constant(&a.expr))
                .then(|| eval::eval(&a.expr, &eval::NoEnv).ok())
                .flatten()
        }
        let mut out = Vec::new();
        for c in self.top.iter().chain(self.sections.iter().flatten()) {
            match c {
                SectionsCommand::Assign(a) if a.symbol != "." => {
                    out.push((a.symbol.as_str(), value(a, true)));
                }
                SectionsCommand::Output(o) => {
                    for c in &o.commands {
                        if let OutputCommand::Assign(a) = c {
                            if a.symbol != "." {
                                out.push((a.symbol.as_str(), None));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Every output section description, in script order.
    pub fn outputs(&self) -> impl Iterator<Item = &OutputDesc> {
        self.sections.iter().flatten().filter_map(|c| match c {
            SectionsCommand::Output(o) => Some(&**o),
            _ => None,
        })
    }
}

/// A command at the top level of `SECTIONS` (or of the script).
#[derive(Debug, Clone)]
pub enum SectionsCommand {
    Assign(Assignment),
    Output(Box<OutputDesc>),
    /// `ASSERT(expr, "message")`.
    Assert(Expr, String, Pos),
}

/// How a script assignment defines its symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignMode {
    /// `sym = expr`: always defined.
    No,
    /// `PROVIDE(sym = expr)`: defined only if referenced and not defined elsewhere.
    Provide,
    /// `PROVIDE_HIDDEN(sym = expr)`.
    ProvideHidden,
    /// `HIDDEN(sym = expr)`: defined, with hidden visibility.
    Hidden,
}

/// `symbol op expr;` (`.` for the location counter). `op` is `=` or one of `+= -= *= /=
/// <<= >>= &= |=`, kept as the binary operator it applies.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub symbol: String,
    pub op: Option<BinOp>,
    pub expr: Expr,
    pub provide: AssignMode,
    pub pos: Pos,
}

/// An output section description.
#[derive(Debug, Clone)]
pub struct OutputDesc {
    pub name: String,
    pub pos: Pos,
    pub addr: Option<Expr>,
    /// `(NOLOAD)`.
    pub noload: bool,
    /// `(READONLY)`.
    pub readonly: bool,
    /// `AT(lma)`.
    pub at: Option<Expr>,
    /// `ALIGN(expr)` before the brace.
    pub align: Option<Expr>,
    /// `SUBALIGN(expr)`.
    pub subalign: Option<Expr>,
    /// `ONLY_IF_RO` (true) / `ONLY_IF_RW` (false).
    pub only_if_ro: Option<bool>,
    pub commands: Vec<OutputCommand>,
    /// `> region`.
    pub region: Option<String>,
    /// `AT> region`.
    pub lma_region: Option<String>,
    /// `:phdr` names.
    pub phdrs: Vec<String>,
    /// `= fill`.
    pub fill: Option<Expr>,
}

impl OutputDesc {
    /// A description with only a name: no address, no attributes, no commands.
    pub fn new(name: String, pos: Pos) -> OutputDesc {
        OutputDesc {
            name,
            pos,
            addr: None,
            noload: false,
            readonly: false,
            at: None,
            align: None,
            subalign: None,
            only_if_ro: None,
            commands: Vec::new(),
            region: None,
            lma_region: None,
            phdrs: Vec::new(),
            fill: None,
        }
    }
}

/// A command inside an output section description.
#[derive(Debug, Clone)]
pub enum OutputCommand {
    Input(InputDesc),
    Assign(Assignment),
    /// `BYTE`/`SHORT`/`LONG`/`QUAD`/`SQUAD(expr)`: (size in bytes, value).
    Data(u8, Expr),
    /// `FILL(expr)`.
    Fill(Expr),
    Assert(Expr, String, Pos),
}

/// How the sections a pattern matches are sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    None,
    Name,
    Alignment,
    InitPriority,
    /// `SORT_BY_NAME(SORT_BY_ALIGNMENT(...))` and the like: name, then alignment.
    NameAlignment,
    AlignmentName,
}

/// One section pattern inside an input section description, with the files it excludes.
#[derive(Debug, Clone)]
pub struct SectionPattern {
    pub exclude_files: Vec<String>,
    pub pattern: String,
    pub sort: Sort,
}

/// `[KEEP(] filepattern ( sectionpattern ... ) [)]`; a lone `filepattern` takes all of the
/// file's sections; `*(COMMON)` also takes common symbols.
#[derive(Debug, Clone)]
pub struct InputDesc {
    pub keep: bool,
    pub file: String,
    /// `EXCLUDE_FILE(...)` before the file pattern.
    pub exclude_files: Vec<String>,
    /// `SORT(filepattern)`: files in name order.
    pub sort_files: bool,
    /// Empty: every section of the matching files.
    pub sections: Vec<SectionPattern>,
    pub pos: Pos,
}

/// A `MEMORY` region.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    /// The attribute letters as written (`rx`, `!w`...).
    pub attrs: String,
    pub origin: Expr,
    pub length: Expr,
    pub pos: Pos,
}

/// A `PHDRS` entry.
#[derive(Debug, Clone)]
pub struct Phdr {
    pub name: String,
    pub p_type: u32,
    pub filehdr: bool,
    pub phdrs: bool,
    pub at: Option<Expr>,
    pub flags: Option<Expr>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Xor,
    Or,
    LogAnd,
    LogOr,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Num(u64),
    Dot,
    /// A symbol; also a section or region name as a function's argument.
    Sym(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    BitNot(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A built-in function: its name as written (upper case) and arguments.
    Call(&'static str, Vec<Expr>, Pos),
}

/// The built-in functions weld evaluates, with how many arguments each takes.
pub const FUNCTIONS: &[(&str, std::ops::RangeInclusive<usize>)] = &[
    ("ABSOLUTE", 1..=1),
    ("ADDR", 1..=1),
    ("ALIGN", 1..=2),
    ("ALIGNOF", 1..=1),
    ("BLOCK", 1..=1),
    ("CONSTANT", 1..=1),
    ("DATA_SEGMENT_ALIGN", 2..=2),
    ("DATA_SEGMENT_END", 1..=1),
    ("DATA_SEGMENT_RELRO_END", 2..=2),
    ("DEFINED", 1..=1),
    ("LENGTH", 1..=1),
    ("LOADADDR", 1..=1),
    ("LOG2CEIL", 1..=1),
    ("MAX", 2..=2),
    ("MIN", 2..=2),
    ("NEXT", 1..=1),
    ("ORIGIN", 1..=1),
    ("SEGMENT_START", 2..=2),
    ("SIZEOF", 1..=1),
    ("SIZEOF_HEADERS", 0..=0),
];
