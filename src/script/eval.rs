//! Evaluating script expressions. Values are 64-bit addresses and numbers with wrapping
//! arithmetic, as GNU ld computes them on a 64-bit target.

use super::{BinOp, Expr};

/// What an expression may ask about the link while it is laid out.
pub trait Env {
    /// The location counter; `None` where `.` means nothing.
    fn dot(&self) -> Option<u64>;
    /// A symbol's value: one the script assigned, or one an input defines (`None` when it
    /// is undefined, or its address is not known yet).
    fn symbol(&self, name: &str) -> Option<u64>;
    /// `DEFINED(sym)`: defined by an input, or assigned by the script before this point.
    fn defined(&self, name: &str) -> bool;
    /// An output section's (address, load address, size, alignment), once placed.
    fn section(&self, name: &str) -> Option<(u64, u64, u64, u64)>;
    /// A memory region's (origin, length).
    fn region(&self, name: &str) -> Option<(u64, u64)>;
    fn sizeof_headers(&self) -> u64;
    /// `SEGMENT_START(name, default)`: `-Ttext-segment` and the like.
    fn segment_start(&self, name: &str) -> Option<u64>;
    /// `DATA_SEGMENT_ALIGN`'s value, as the layout adjusts it (for RELRO).
    fn data_segment_align(&self, value: u64) -> u64 {
        value
    }
    /// `DATA_SEGMENT_RELRO_END(offset, exp)`'s value, as the layout adjusts it (for RELRO):
    /// RELRO ends at `exp + offset`.
    fn data_segment_relro_end(&self, _offset: u64, exp: u64) -> u64 {
        exp
    }
}

/// The page size weld lays out for (`CONSTANT(MAXPAGESIZE)`, `CONSTANT(COMMONPAGESIZE)`).
pub const PAGE_SIZE: u64 = 0x1000;

/// Evaluates `e`; the error says what could not be computed.
pub fn eval(e: &Expr, env: &dyn Env) -> Result<u64, String> {
    Ok(match e {
        Expr::Num(n) => *n,
        Expr::Dot => env
            .dot()
            .ok_or("'.' (the location counter) is not available here")?,
        Expr::Sym(name) => env
            .symbol(name)
            .ok_or_else(|| format!("undefined symbol '{name}' referenced in expression"))?,
        Expr::Neg(a) => eval(a, env)?.wrapping_neg(),
        Expr::Not(a) => u64::from(eval(a, env)? == 0),
        Expr::BitNot(a) => !eval(a, env)?,
        Expr::Cond(c, a, b) => {
            if eval(c, env)? != 0 {
                eval(a, env)?
            } else {
                eval(b, env)?
            }
        }
        Expr::Binary(op, a, b) => {
            let x = eval(a, env)?;
            // `&&` and `||` do not evaluate their right side when the left decides.
            match op {
                BinOp::LogAnd if x == 0 => return Ok(0),
                BinOp::LogOr if x != 0 => return Ok(1),
                _ => {}
            }
            let y = eval(b, env)?;
            binary(*op, x, y)?
        }
        Expr::Call(name, args, _) => call(name, args, env)?,
    })
}

fn binary(op: BinOp, x: u64, y: u64) -> Result<u64, String> {
    Ok(match op {
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::Div => x.checked_div(y).ok_or("division by zero")?,
        BinOp::Rem => x.checked_rem(y).ok_or("modulo by zero")?,
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Shl => x.checked_shl(y as u32).unwrap_or(0),
        BinOp::Shr => x.checked_shr(y as u32).unwrap_or(0),
        // Comparisons are signed, as in GNU ld (its values are bfd_signed_vma).
        BinOp::Lt => u64::from((x as i64) < (y as i64)),
        BinOp::Le => u64::from((x as i64) <= (y as i64)),
        BinOp::Gt => u64::from((x as i64) > (y as i64)),
        BinOp::Ge => u64::from((x as i64) >= (y as i64)),
        BinOp::Eq => u64::from(x == y),
        BinOp::Ne => u64::from(x != y),
        BinOp::And => x & y,
        BinOp::Xor => x ^ y,
        BinOp::Or => x | y,
        BinOp::LogAnd => u64::from(x != 0 && y != 0),
        BinOp::LogOr => u64::from(x != 0 || y != 0),
    })
}

fn align_up(value: u64, align: u64) -> Result<u64, String> {
    if align == 0 {
        return Ok(value);
    }
    if !align.is_power_of_two() {
        return Err(format!("alignment {align:#x} is not a power of two"));
    }
    Ok(value.wrapping_add(align - 1) & !(align - 1))
}

fn name_arg(args: &[Expr]) -> &str {
    match args.first() {
        Some(Expr::Sym(name)) => name,
        _ => "",
    }
}

fn call(name: &str, args: &[Expr], env: &dyn Env) -> Result<u64, String> {
    let arg = |i: usize| eval(&args[i], env);
    let section = |what: &str| {
        let sec = name_arg(args);
        env.section(sec)
            .ok_or_else(|| format!("{what}({sec}): no output section {sec} (or not placed yet)"))
    };
    Ok(match name {
        "ABSOLUTE" => arg(0)?,
        "ADDR" => section("ADDR")?.0,
        "LOADADDR" => section("LOADADDR")?.1,
        "SIZEOF" => env.section(name_arg(args)).map_or(0, |s| s.2),
        "ALIGNOF" => section("ALIGNOF")?.3,
        "ALIGN" if args.len() == 1 => {
            let dot = env.dot().ok_or("ALIGN(n) needs the location counter")?;
            align_up(dot, arg(0)?)?
        }
        "ALIGN" => align_up(arg(0)?, arg(1)?)?,
        // BLOCK(n) is ALIGN(n), kept for old scripts.
        "NEXT" | "BLOCK" => {
            let dot = env.dot().ok_or("NEXT(n) needs the location counter")?;
            align_up(dot, arg(0)?)?
        }
        "CONSTANT" => match name_arg(args) {
            "MAXPAGESIZE" | "COMMONPAGESIZE" => PAGE_SIZE,
            other => return Err(format!("CONSTANT({other}): unknown constant")),
        },
        "DEFINED" => u64::from(env.defined(name_arg(args))),
        "LENGTH" | "ORIGIN" => {
            let region = name_arg(args);
            let (origin, length) = env
                .region(region)
                .ok_or_else(|| format!("{name}({region}): no memory region {region}"))?;
            if name == "ORIGIN" {
                origin
            } else {
                length
            }
        }
        "LOG2CEIL" => {
            let x = arg(0)?;
            if x <= 1 {
                0
            } else {
                u64::from(64 - (x - 1).leading_zeros())
            }
        }
        "MAX" => arg(0)?.max(arg(1)?),
        "MIN" => arg(0)?.min(arg(1)?),
        "SEGMENT_START" => {
            let segment = name_arg(args);
            match env.segment_start(segment) {
                Some(v) => v,
                None => arg(1)?,
            }
        }
        "SIZEOF_HEADERS" => env.sizeof_headers(),
        // GNU ld's DATA_SEGMENT_ALIGN(maxpagesize, commonpagesize): the data segment starts
        // on a new page at the same offset within it as `.` (so no file space is wasted).
        "DATA_SEGMENT_ALIGN" => {
            let dot = env
                .dot()
                .ok_or("DATA_SEGMENT_ALIGN needs the location counter")?;
            let max = arg(0)?;
            env.data_segment_align(align_up(dot, max)?.wrapping_add(dot & max.wrapping_sub(1)))
        }
        // DATA_SEGMENT_RELRO_END(offset, exp): RELRO ends at exp + offset; the value is exp
        // (or past it, up to where the layout ends RELRO).
        "DATA_SEGMENT_RELRO_END" => env.data_segment_relro_end(arg(0)?, arg(1)?),
        "DATA_SEGMENT_END" => arg(0)?,
        other => return Err(format!("unknown function {other}")),
    })
}

/// Whether `e` is a plain number: assigned to `.` inside an output section, such a value is
/// an offset from the section's start (GNU ld: "Location Counter"), anything else an address.
pub fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Num(_) => true,
        Expr::Dot | Expr::Sym(_) => false,
        Expr::Neg(a) | Expr::Not(a) | Expr::BitNot(a) => is_constant(a),
        Expr::Binary(_, a, b) => is_constant(a) && is_constant(b),
        Expr::Cond(c, a, b) => is_constant(c) && is_constant(a) && is_constant(b),
        Expr::Call(name, args, _) => {
            matches!(*name, "CONSTANT" | "MAX" | "MIN" | "LOG2CEIL" | "ABSOLUTE")
                && args
                    .iter()
                    .all(|a| matches!(a, Expr::Sym(_)) || is_constant(a))
                && *name != "ABSOLUTE"
        }
    }
}

/// For expressions that need nothing from the link (`FLAGS(6)`, `AT(0x1000)`).
pub struct NoEnv;

impl Env for NoEnv {
    fn dot(&self) -> Option<u64> {
        None
    }
    fn symbol(&self, _: &str) -> Option<u64> {
        None
    }
    fn defined(&self, _: &str) -> bool {
        false
    }
    fn section(&self, _: &str) -> Option<(u64, u64, u64, u64)> {
        None
    }
    fn region(&self, _: &str) -> Option<(u64, u64)> {
        None
    }
    fn sizeof_headers(&self) -> u64 {
        0
    }
    fn segment_start(&self, _: &str) -> Option<u64> {
        None
    }
}
