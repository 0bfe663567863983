//! The script parser: a cursor over the text that lexes on demand, in the mode the grammar
//! needs at that point (GNU ld's lexer has states for the same reason: `*` is a wildcard in
//! `*(.text)` and a product in `4 * 2`, `-` is part of `-lc` and a minus in `a - 4`).

use super::*;
use std::fmt;

/// A script error, with where it is and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub pos: Pos,
    pub msg: String,
    /// The text of the line the error is on.
    pub line_text: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.msg)?;
        if !self.line_text.trim().is_empty() {
            let col = self.pos.col.saturating_sub(1) as usize;
            let pad: String = self
                .line_text
                .chars()
                .take(col)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n>>> {}\n>>> {pad}^", self.line_text)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScriptError {}

/// Finds and reads a file `INCLUDE` names: (its text, its name for messages).
pub type Includer<'a> = &'a dyn Fn(&str) -> Result<(String, String), String>;

/// Parses a whole script; `file` names it in merged scripts' messages. `INCLUDE` is an
/// error (see [`parse_with`]).
pub fn parse(text: &str, file: &str) -> Result<Script, ScriptError> {
    parse_with(text, file, None)
}

/// [`parse`], with `include` to read the files `INCLUDE` names (at the top level and in
/// SECTIONS; GNU ld also allows it in MEMORY and output sections, which weld refuses).
pub fn parse_with(
    text: &str,
    file: &str,
    include: Option<Includer>,
) -> Result<Script, ScriptError> {
    let mut p = Parser {
        text,
        at: 0,
        expr_nodes: 0,
        include,
        depth: 0,
    };
    let mut script = Script {
        file: file.to_string(),
        ..Script::default()
    };
    p.script(&mut script)?;
    Ok(script)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Names, file names and wildcard patterns: anything up to white space or `(){};,"`
    /// (and `:` / `=` where they end a name).
    Name,
    /// Expressions: numbers, symbols, operators.
    Expr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    /// A quoted string.
    Str(String),
    Num(u64),
    Punct(&'static str),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "'{w}'"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Num(n) => write!(f, "{n:#x}"),
            Tok::Punct(p) => write!(f, "'{p}'"),
            Tok::End => write!(f, "end of file"),
        }
    }
}

/// Operators and punctuation, longest first.
const PUNCT: &[&str] = &[
    "<<=", ">>=", "+=", "-=", "*=", "/=", "&=", "|=", "^=", "<<", ">>", "==", "!=", "<=", ">=",
    "&&", "||", "(", ")", "{", "}", ",", ";", ":", "=", "<", ">", "!", "~", "+", "-", "*", "/",
    "%", "&", "|", "^", "?",
];

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next unread character.
    at: usize,
    /// Operands read in the expression being parsed: evaluation and dropping recurse over
    /// the tree, so a script's expressions are bounded.
    expr_nodes: usize,
    include: Option<Includer<'a>>,
    /// How many INCLUDEs deep this text is.
    depth: usize,
}

/// INCLUDEs nested deeper than this are taken to be a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// The most operands and operators one expression may have.
const MAX_EXPR_NODES: usize = 1000;

type R<T> = Result<T, ScriptError>;

impl<'a> Parser<'a> {
    fn pos_of(&self, at: usize) -> Pos {
        let before = &self.text[..at];
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line,
            col: self.text[line_start..at].chars().count() as u32 + 1,
        }
    }

    fn error_at(&self, at: usize, msg: impl Into<String>) -> ScriptError {
        let line_start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i);
        ScriptError {
            pos: self.pos_of(at),
            msg: msg.into(),
            line_text: self.text[line_start..line_end].trim_end().to_string(),
        }
    }

    /// An error at the next token.
    fn error(&mut self, msg: impl Into<String>) -> ScriptError {
        let at = self.skip_space().unwrap_or(self.at);
        self.error_at(at, msg)
    }

    /// Skips white space and comments; the offset of the next token.
    fn skip_space(&mut self) -> R<usize> {
        loop {
            let rest = &self.text[self.at..];
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            if let Some(comment) = trimmed.strip_prefix("/*") {
                match comment.find("*/") {
                    Some(end) => self.at += end + 4,
                    None => return Err(self.error_at(self.at, "unterminated comment")),
                }
            } else if trimmed.starts_with('#') && self.at_line_start() {
                // `#` comments: GNU ld does not have them, but version scripts and some
                // generated scripts do; only at the start of a line.
                self.at += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return Ok(self.at);
            }
        }
    }

    fn at_line_start(&self) -> bool {
        self.text[..self.at]
            .rsplit('\n')
            .next()
            .is_none_or(|l| l.trim().is_empty())
    }

    /// Lexes the next token without consuming it: (token, its start, its end).
    fn lex(&mut self, mode: Mode) -> R<(Tok, usize, usize)> {
        let start = self.skip_space()?;
        let rest = &self.text[start..];
        let Some(c) = rest.chars().next() else {
            return Ok((Tok::End, start, start));
        };
        if c == '"' {
            return match rest[1..].find('"') {
                Some(end) => Ok((
                    Tok::Str(rest[1..1 + end].to_string()),
                    start,
                    start + end + 2,
                )),
                None => Err(self.error_at(start, "unterminated string")),
            };
        }
        match mode {
            Mode::Name => {
                let stop = |c: char| c.is_whitespace() || "(){};,\"".contains(c);
                const ASSIGN: &[&str] = &[
                    "<<=", ">>=", "+=", "-=", "*=", "/=", "&=", "|=", "^=", "=", ":",
                ];
                if let Some(p) = ASSIGN.iter().find(|p| rest.starts_with(**p)) {
                    return Ok((Tok::Punct(punct(p)), start, start + p.len()));
                }
                if stop(c) {
                    return Ok((Tok::Punct(punct(&rest[..1])), start, start + 1));
                }
                let mut end = rest.find(stop).unwrap_or(rest.len());
                // `name:` and `name=` end the name (a section's `:`, an assignment).
                if let Some(i) = rest[..end].find([':', '=']) {
                    let op_before = i > 1
                        && rest.as_bytes()[i] == b'='
                        && b"+-*/&|^".contains(&rest.as_bytes()[i - 1]);
                    end = if op_before { i - 1 } else { i };
                }
                Ok((Tok::Word(rest[..end].to_string()), start, start + end))
            }
            Mode::Expr => {
                if c.is_ascii_digit() {
                    let end = rest
                        .find(|c: char| !c.is_ascii_alphanumeric())
                        .unwrap_or(rest.len());
                    let value = parse_number(&rest[..end]).ok_or_else(|| {
                        self.error_at(start, format!("bad number '{}'", &rest[..end]))
                    })?;
                    return Ok((Tok::Num(value), start, start + end));
                }
                if c.is_alphanumeric() || "_.$".contains(c) {
                    let end = rest
                        .find(|c: char| !(c.is_alphanumeric() || "_.$@".contains(c)))
                        .unwrap_or(rest.len());
                    return Ok((Tok::Word(rest[..end].to_string()), start, start + end));
                }
                match PUNCT.iter().find(|p| rest.starts_with(**p)) {
                    Some(p) => Ok((Tok::Punct(p), start, start + p.len())),
                    None => Err(self.error_at(start, format!("unexpected character '{c}'"))),
                }
            }
        }
    }

    fn peek(&mut self, mode: Mode) -> R<Tok> {
        Ok(self.lex(mode)?.0)
    }

    fn next(&mut self, mode: Mode) -> R<Tok> {
        let (tok, _, end) = self.lex(mode)?;
        self.at = end;
        Ok(tok)
    }

    /// Consumes `p` if it comes next.
    fn eat(&mut self, p: &str) -> R<bool> {
        let (tok, _, end) = self.lex(Mode::Expr)?;
        if tok == Tok::Punct(punct(p)) {
            self.at = end;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect(&mut self, p: &str) -> R<()> {
        let (tok, start, end) = self.lex(Mode::Expr)?;
        if tok == Tok::Punct(punct(p)) {
            self.at = end;
            Ok(())
        } else {
            Err(self.error_at(start, format!("expected '{p}', found {tok}")))
        }
    }

    /// Consumes the keyword `word` if it comes next.
    fn eat_word(&mut self, word: &str) -> R<bool> {
        let (tok, _, end) = self.lex(Mode::Name)?;
        if tok == Tok::Word(word.to_string()) {
            self.at = end;
            return Ok(true);
        }
        Ok(false)
    }

    /// A name, file name or pattern (quoted or not).
    fn name(&mut self, what: &str) -> R<String> {
        let (tok, start, end) = self.lex(Mode::Name)?;
        match tok {
            Tok::Word(w) | Tok::Str(w) => {
                self.at = end;
                Ok(w)
            }
            tok => Err(self.error_at(start, format!("expected {what}, found {tok}"))),
        }
    }

    fn script(&mut self, script: &mut Script) -> R<()> {
        loop {
            let start = self.skip_space()?;
            let tok = self.next(Mode::Name)?;
            let word = match tok {
                Tok::End => return Ok(()),
                Tok::Punct(";") => continue,
                Tok::Word(w) => w,
                tok => return Err(self.error_at(start, format!("unexpected {tok}"))),
            };
            match word.as_str() {
                "GROUP" => {
                    let inputs = self.inputs()?;
                    script.inputs.push(InputCommand::Group(inputs));
                }
                "INPUT" => {
                    let inputs = self.inputs()?;
                    script.inputs.push(InputCommand::Input(inputs));
                }
                "SEARCH_DIR" => {
                    self.expect("(")?;
                    let dir = self.name("a directory")?;
                    self.expect(")")?;
                    script.inputs.push(InputCommand::SearchDir(dir));
                }
                "OUTPUT_FORMAT" => self.output_format()?,
                "OUTPUT_ARCH" | "TARGET" => self.output_arch(&word)?,
                "ENTRY" => {
                    self.expect("(")?;
                    script.entry = Some(self.name("a symbol")?);
                    self.expect(")")?;
                }
                "SECTIONS" => {
                    if script.sections.is_some() {
                        return Err(self.error_at(start, "a second SECTIONS command"));
                    }
                    script.sections = Some(self.sections()?);
                    if self.eat_word("INSERT")? {
                        let after = if self.eat_word("AFTER")? {
                            true
                        } else if self.eat_word("BEFORE")? {
                            false
                        } else {
                            return Err(self.error("expected AFTER or BEFORE after INSERT"));
                        };
                        script.insert = Some((after, self.name("an output section name")?));
                    }
                }
                "MEMORY" => self.memory(script)?,
                "PHDRS" => self.phdrs(script)?,
                "REGION_ALIAS" => {
                    self.expect("(")?;
                    let alias = self.name("a region alias")?;
                    self.expect(",")?;
                    let region = self.name("a region name")?;
                    self.expect(")")?;
                    script.region_aliases.push((alias, region));
                }
                "ASSERT" => {
                    let (expr, msg) = self.assert_args()?;
                    script
                        .top
                        .push(SectionsCommand::Assert(expr, msg, self.pos_of(start)));
                }
                // Accepted with no effect on an x86-64 ELF link: the cross-reference check and
                // common allocation choices GNU ld makes the same way by default.
                "NOCROSSREFS" | "NOCROSSREFS_TO" | "EXTERN" => {
                    self.expect("(")?;
                    let mut names = Vec::new();
                    while !self.eat(")")? {
                        names.push(self.name("a name")?);
                        self.eat(",")?;
                    }
                    match word.as_str() {
                        "EXTERN" => script.externs.extend(names),
                        "NOCROSSREFS" => script.nocrossrefs.push((false, names)),
                        _ => script.nocrossrefs.push((true, names)),
                    }
                }
                "FORCE_COMMON_ALLOCATION" | "FORCE_GROUP_ALLOCATION" => {}
                "PROVIDE" | "PROVIDE_HIDDEN" | "HIDDEN" => {
                    let a = self.provide(&word, start)?;
                    script.top.push(SectionsCommand::Assign(a));
                }
                "INCLUDE" => {
                    let (text, name) = self.include_file(start)?;
                    let mut sub = self.sub_parser(&text);
                    sub.script(script)
                        .map_err(|e| self.included_error(start, &name, e))?;
                }
                "STARTUP"
                | "OUTPUT"
                | "VERSION"
                | "INHIBIT_COMMON_ALLOCATION"
                | "OVERLAY"
                | "OUTPUT_SECTION_FLAGS" => {
                    return Err(self.error_at(
                        start,
                        format!("{word} is not supported by weld (it is not ignored either)"),
                    ));
                }
                _ => {
                    if !is_assign_op(&self.peek(Mode::Expr)?) {
                        return Err(self.error_at(start, format!("unknown command '{word}'")));
                    }
                    let a = self.assignment_after(word, start, AssignMode::No)?;
                    script.top.push(SectionsCommand::Assign(a));
                }
            }
        }
    }

    /// `OUTPUT_FORMAT(...)`: one format, or three (default, big-endian, little-endian); the
    /// default must be x86-64 ELF.
    fn output_format(&mut self) -> R<()> {
        self.expect("(")?;
        let at = self.skip_space()?;
        let mut formats = vec![self.name("an output format")?];
        while self.eat(",")? {
            formats.push(self.name("an output format")?);
        }
        self.expect(")")?;
        if formats.len() != 1 && formats.len() != 3 {
            return Err(self.error_at(at, "OUTPUT_FORMAT takes 1 or 3 arguments"));
        }
        // With three arguments the first is the default (the others are for -EB
        // and -EL), which is what an x86-64 link uses.
        if !formats[0].starts_with("elf64-x86-64") {
            return Err(self.error_at(
                at,
                format!(
                    "incompatible OUTPUT_FORMAT {} (weld links elf64-x86-64 only)",
                    formats[0]
                ),
            ));
        }
        Ok(())
    }

    /// `OUTPUT_ARCH(...)` or `TARGET(...)` (`word`): it must name x86-64 ELF.
    fn output_arch(&mut self, word: &str) -> R<()> {
        self.expect("(")?;
        let at = self.skip_space()?;
        // (`i386:x86-64`: up to the parenthesis, colon and all.)
        let end = self.text[at..]
            .find(')')
            .map_or(self.text.len(), |i| at + i);
        let arch = self.text[at..end].trim().trim_matches('"').to_string();
        self.at = end;
        self.expect(")")?;
        let ok = if word == "TARGET" {
            arch.starts_with("elf64-x86-64")
        } else {
            matches!(arch.as_str(), "i386:x86-64" | "x86-64" | "i386:x64-32")
        };
        if !ok {
            return Err(self.error_at(at, format!("{word}({arch}): weld links x86-64 ELF only")));
        }
        Ok(())
    }

    /// The list of a `GROUP(...)` or `INPUT(...)`, with `AS_NEEDED(...)` inside.
    fn inputs(&mut self) -> R<Vec<ScriptInput>> {
        self.expect("(")?;
        let mut inputs = Vec::new();
        let mut as_needed = false;
        loop {
            if self.eat(")")? {
                if !as_needed {
                    return Ok(inputs);
                }
                as_needed = false;
                continue;
            }
            if self.eat(",")? {
                continue;
            }
            let (tok, start, end) = self.lex(Mode::Name)?;
            let word = match tok {
                Tok::Word(w) | Tok::Str(w) => w,
                Tok::End => return Err(self.error_at(start, "missing ')'")),
                tok => return Err(self.error_at(start, format!("unexpected {tok}"))),
            };
            self.at = end;
            if word == "AS_NEEDED" && !as_needed && self.eat("(")? {
                as_needed = true;
                continue;
            }
            // `-l:libfoo.a` and `=/path` are one name: the name lexer stops at `:`/`=`.
            let mut word = word;
            while matches!(self.text[self.at..].chars().next(), Some(':' | '=')) {
                let c = &self.text[self.at..self.at + 1];
                word.push_str(c);
                self.at += 1;
                if let (Tok::Word(more), s, e) = self.lex(Mode::Name)? {
                    if s == self.at {
                        word.push_str(&more);
                        self.at = e;
                    }
                }
            }
            let entry = match word.strip_prefix("-l") {
                Some(name) if !name.is_empty() => Entry::Library(name.to_string()),
                _ => Entry::File(word),
            };
            inputs.push(ScriptInput { entry, as_needed });
        }
    }

    /// The file an `INCLUDE` at `start` names, read.
    fn include_file(&mut self, start: usize) -> R<(String, String)> {
        let file = self.name("a file name")?;
        let Some(include) = self.include else {
            return Err(self.error_at(start, "INCLUDE is not available here"));
        };
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(self.error_at(
                start,
                format!("INCLUDE {file}: nested too deeply (does a script include itself?)"),
            ));
        }
        include(&file).map_err(|e| self.error_at(start, format!("INCLUDE {file}: {e}")))
    }

    fn sub_parser<'t>(&self, text: &'t str) -> Parser<'t>
    where
        'a: 't,
    {
        Parser {
            text,
            at: 0,
            expr_nodes: 0,
            include: self.include,
            depth: self.depth + 1,
        }
    }

    /// An error in an included file, reported at its INCLUDE.
    fn included_error(&self, start: usize, name: &str, e: ScriptError) -> ScriptError {
        let mut msg = format!("in {name}:{}: {}", e.pos, e.msg);
        if !e.line_text.trim().is_empty() {
            msg.push_str(&format!(" ({})", e.line_text.trim()));
        }
        self.error_at(start, msg)
    }

    fn assert_args(&mut self) -> R<(Expr, String)> {
        self.expect("(")?;
        let expr = self.expr()?;
        self.expect(",")?;
        let msg = self.name("a message")?;
        self.expect(")")?;
        Ok((expr, msg))
    }

    /// `PROVIDE(sym = expr)` and the like, after the keyword.
    fn provide(&mut self, word: &str, start: usize) -> R<Assignment> {
        let provide = match word {
            "PROVIDE" => AssignMode::Provide,
            "PROVIDE_HIDDEN" => AssignMode::ProvideHidden,
            _ => AssignMode::Hidden,
        };
        self.expect("(")?;
        let symbol = self.name("a symbol")?;
        let a = self.assignment_after(symbol, start, provide)?;
        self.expect(")")?;
        Ok(a)
    }

    /// The rest of `symbol op expr` after the symbol (and the `;` where one is due).
    fn assignment_after(
        &mut self,
        symbol: String,
        start: usize,
        provide: AssignMode,
    ) -> R<Assignment> {
        let (tok, at, end) = self.lex(Mode::Expr)?;
        let op = match tok {
            Tok::Punct("=") => None,
            Tok::Punct("+=") => Some(BinOp::Add),
            Tok::Punct("-=") => Some(BinOp::Sub),
            Tok::Punct("*=") => Some(BinOp::Mul),
            Tok::Punct("/=") => Some(BinOp::Div),
            Tok::Punct("<<=") => Some(BinOp::Shl),
            Tok::Punct(">>=") => Some(BinOp::Shr),
            Tok::Punct("&=") => Some(BinOp::And),
            Tok::Punct("|=") => Some(BinOp::Or),
            Tok::Punct("^=") => Some(BinOp::Xor),
            tok => {
                return Err(self.error_at(
                    at,
                    format!("unknown command or missing '=' after '{symbol}': found {tok}"),
                ))
            }
        };
        self.at = end;
        let expr = self.expr()?;
        if provide == AssignMode::No {
            // The `;` ends a plain assignment (GNU ld lets the last one in a block go
            // without it).
            if !self.eat(";")? && !matches!(self.peek(Mode::Expr)?, Tok::Punct("}") | Tok::End) {
                let (tok, at, _) = self.lex(Mode::Expr)?;
                return Err(self.error_at(at, format!("expected ';', found {tok}")));
            }
        }
        Ok(Assignment {
            symbol,
            op,
            expr,
            provide,
            pos: self.pos_of(start),
        })
    }

    fn sections(&mut self) -> R<Vec<SectionsCommand>> {
        self.expect("{")?;
        let mut commands = Vec::new();
        self.sections_body(&mut commands, true)?;
        Ok(commands)
    }

    /// SECTIONS' commands up to its `}` (`braced`) or the end of the text (an INCLUDE).
    fn sections_body(&mut self, commands: &mut Vec<SectionsCommand>, braced: bool) -> R<()> {
        loop {
            let start = self.skip_space()?;
            if braced && self.eat("}")? {
                return Ok(());
            }
            if self.eat(";")? {
                continue;
            }
            let word = match self.next(Mode::Name)? {
                Tok::Word(w) | Tok::Str(w) => w,
                Tok::End if !braced => return Ok(()),
                Tok::End => return Err(self.error_at(start, "missing '}' after SECTIONS")),
                tok => return Err(self.error_at(start, format!("unexpected {tok}"))),
            };
            match word.as_str() {
                "ENTRY" => return Err(self.error_at(start, "ENTRY inside SECTIONS: put it before")),
                "ASSERT" => {
                    let (expr, msg) = self.assert_args()?;
                    commands.push(SectionsCommand::Assert(expr, msg, self.pos_of(start)));
                }
                "PROVIDE" | "PROVIDE_HIDDEN" | "HIDDEN" => {
                    let a = self.provide(&word, start)?;
                    commands.push(SectionsCommand::Assign(a));
                }
                "INCLUDE" => {
                    let (text, name) = self.include_file(start)?;
                    let mut sub = self.sub_parser(&text);
                    sub.sections_body(commands, false)
                        .map_err(|e| self.included_error(start, &name, e))?;
                }
                "OVERLAY" => commands.extend(self.overlay(start)?),
                _ => {
                    if is_assign_op(&self.peek(Mode::Expr)?) {
                        let a = self.assignment_after(word, start, AssignMode::No)?;
                        commands.push(SectionsCommand::Assign(a));
                    } else {
                        let desc = self.output_desc(word, start)?;
                        commands.push(SectionsCommand::Output(Box::new(desc)));
                    }
                }
            }
        }
    }

    fn output_desc(&mut self, name: String, start: usize) -> R<OutputDesc> {
        let mut desc = OutputDesc::new(name, self.pos_of(start));
        // [address] [(type)] :
        loop {
            let (tok, at, _) = self.lex(Mode::Expr)?;
            match tok {
                Tok::Punct(":") => {
                    self.expect(":")?;
                    break;
                }
                Tok::Punct("(") if self.type_follows()? => {
                    self.expect("(")?;
                    let ty = self.name("a section type")?;
                    match ty.as_str() {
                        "NOLOAD" => desc.noload = true,
                        "READONLY" => desc.readonly = true,
                        _ => {
                            return Err(self.error_at(
                                at + 1,
                                format!("section type ({ty}) is not supported by weld"),
                            ))
                        }
                    }
                    self.expect(")")?;
                }
                Tok::End => return Err(self.error_at(at, "unexpected end of file")),
                _ if desc.addr.is_none() => desc.addr = Some(self.expr()?),
                tok => return Err(self.error_at(at, format!("expected ':', found {tok}"))),
            }
        }
        // [AT(lma)] [ALIGN(a)] [SUBALIGN(a)] [constraint] {
        loop {
            if self.eat("{")? {
                break;
            }
            let at = self.skip_space()?;
            let word = match self.next(Mode::Name)? {
                Tok::Word(w) => w,
                tok => return Err(self.error_at(at, format!("expected '{{', found {tok}"))),
            };
            match word.as_str() {
                "AT" => desc.at = Some(self.paren_expr()?),
                "ALIGN" => desc.align = Some(self.paren_expr()?),
                "SUBALIGN" => desc.subalign = Some(self.paren_expr()?),
                "ONLY_IF_RO" => desc.only_if_ro = Some(true),
                "ONLY_IF_RW" => desc.only_if_ro = Some(false),
                "ALIGN_WITH_INPUT" => {}
                _ => return Err(self.error_at(at, format!("expected '{{', found '{word}'"))),
            }
        }
        self.output_commands(&mut desc)?;
        self.output_trailer(&mut desc)?;
        Ok(desc)
    }

    /// An output section description's commands, after its `{`, through its `}`.
    fn output_commands(&mut self, desc: &mut OutputDesc) -> R<()> {
        loop {
            let at = self.skip_space()?;
            if self.eat("}")? {
                break;
            }
            if self.eat(";")? {
                continue;
            }
            let word = match self.lex(Mode::Name)? {
                (Tok::End, ..) => return Err(self.error_at(at, "missing '}'")),
                (Tok::Word(w), _, end) => {
                    self.at = end;
                    w
                }
                (Tok::Str(w), _, end) => {
                    self.at = end;
                    w
                }
                (tok, ..) => return Err(self.error_at(at, format!("unexpected {tok}"))),
            };
            let command = match word.as_str() {
                "BYTE" | "SHORT" | "LONG" | "QUAD" | "SQUAD" => {
                    let size = match word.as_str() {
                        "BYTE" => 1,
                        "SHORT" => 2,
                        "LONG" => 4,
                        _ => 8,
                    };
                    OutputCommand::Data(size, self.paren_expr()?)
                }
                "FILL" => OutputCommand::Fill(self.paren_expr()?),
                "ASSERT" => {
                    let (expr, msg) = self.assert_args()?;
                    OutputCommand::Assert(expr, msg, self.pos_of(at))
                }
                "PROVIDE" | "PROVIDE_HIDDEN" | "HIDDEN" => {
                    OutputCommand::Assign(self.provide(&word, at)?)
                }
                "KEEP" => {
                    self.expect("(")?;
                    let first = self.name("a file pattern")?;
                    let mut input = self.input_desc(first, at)?;
                    input.keep = true;
                    self.expect(")")?;
                    OutputCommand::Input(input)
                }
                "CREATE_OBJECT_SYMBOLS" | "CONSTRUCTORS" => continue,
                "INCLUDE" | "INPUT_SECTION_FLAGS" => {
                    return Err(self.error_at(
                        at,
                        format!("{word} is not supported by weld (it is not ignored either)"),
                    ))
                }
                _ => {
                    if is_assign_op(&self.peek(Mode::Expr)?) {
                        OutputCommand::Assign(self.assignment_after(word, at, AssignMode::No)?)
                    } else {
                        OutputCommand::Input(self.input_desc(word, at)?)
                    }
                }
            };
            desc.commands.push(command);
        }
        Ok(())
    }

    /// What may follow an output section description's `}`.
    fn output_trailer(&mut self, desc: &mut OutputDesc) -> R<()> {
        // [> region] [AT> region] [:phdr...] [= fill] [,]
        loop {
            let (tok, _, end) = self.lex(Mode::Expr)?;
            match tok {
                Tok::Punct(">") => {
                    self.at = end;
                    desc.region = Some(self.name("a memory region")?);
                }
                Tok::Word(w) if w == "AT" && self.text[end..].trim_start().starts_with('>') => {
                    self.at = end;
                    self.expect(">")?;
                    desc.lma_region = Some(self.name("a memory region")?);
                }
                Tok::Punct(":") => {
                    self.at = end;
                    desc.phdrs.push(self.name("a program header name")?);
                }
                Tok::Punct("=") => {
                    self.at = end;
                    desc.fill = Some(self.expr()?);
                }
                Tok::Punct(",") => {
                    self.at = end;
                    break;
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// `OVERLAY [start] : [NOCROSSREFS] [AT(ldaddr)] { name { ... } ... } [> region]
    /// [:phdr] [=fill]`, after the keyword, written out as the descriptions GNU ld's manual
    /// says it stands for: every section at `start`, their load addresses one after the
    /// other from `ldaddr` (or `start`), `__load_start_NAME`/`__load_stop_NAME` provided,
    /// and `.` past the largest. (Hidden symbols with a space in their names carry the
    /// start and the next load address.)
    fn overlay(&mut self, start: usize) -> R<Vec<SectionsCommand>> {
        let pos = self.pos_of(start);
        // (Numbered across all scripts, included ones too.)
        static OVERLAYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = OVERLAYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let vma = format!(" overlay {n} start");
        let next = format!(" overlay {n} next");
        let assign = |symbol: &str, op: Option<BinOp>, expr: Expr| {
            SectionsCommand::Assign(Assignment {
                symbol: symbol.to_string(),
                op,
                expr,
                provide: AssignMode::No,
                pos,
            })
        };
        let start_expr = if self.peek(Mode::Expr)? == Tok::Punct(":") {
            Expr::Dot
        } else {
            self.expr()?
        };
        self.expect(":")?;
        let mut load = None;
        loop {
            let at = self.skip_space()?;
            match self.next(Mode::Name)? {
                Tok::Punct("{") => break,
                Tok::Word(w) if w == "NOCROSSREFS" => {}
                Tok::Word(w) if w == "AT" => load = Some(self.paren_expr()?),
                tok => return Err(self.error_at(at, format!("expected '{{', found {tok}"))),
            }
        }
        let mut members = Vec::new();
        loop {
            let at = self.skip_space()?;
            if self.eat("}")? {
                break;
            }
            let name = self.name("an overlay section name")?;
            self.expect("{")?;
            let mut desc = OutputDesc::new(name, self.pos_of(at));
            desc.addr = Some(Expr::Sym(vma.clone()));
            desc.at = Some(Expr::Sym(next.clone()));
            self.output_commands(&mut desc)?;
            // (An entry's own `:phdr` and `=fill`.)
            loop {
                match self.lex(Mode::Expr)? {
                    (Tok::Punct(":"), _, end) => {
                        self.at = end;
                        desc.phdrs.push(self.name("a program header name")?);
                    }
                    (Tok::Punct("="), _, end) => {
                        self.at = end;
                        desc.fill = Some(self.expr()?);
                    }
                    _ => break,
                }
            }
            members.push(desc);
        }
        let mut whole = members
            .first()
            .cloned()
            .ok_or_else(|| self.error_at(start, "an OVERLAY with no sections"))?;
        whole.phdrs.clear();
        whole.fill = None;
        self.output_trailer(&mut whole)?;
        let mut out = vec![
            assign(&vma, None, start_expr),
            assign(&next, None, load.unwrap_or(Expr::Sym(vma.clone()))),
        ];
        let mut largest = Expr::Num(0);
        for mut desc in members {
            desc.region = whole.region.clone();
            if desc.phdrs.is_empty() {
                desc.phdrs = whole.phdrs.clone();
            }
            if desc.fill.is_none() {
                desc.fill = whole.fill.clone();
            }
            let size = Expr::Call("SIZEOF", vec![Expr::Sym(desc.name.clone())], pos);
            let c_name: String = desc
                .name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let loadaddr = || Expr::Call("LOADADDR", vec![Expr::Sym(desc.name.clone())], pos);
            let provided = [
                (format!("__load_start_{c_name}"), loadaddr()),
                (
                    format!("__load_stop_{c_name}"),
                    Expr::Binary(BinOp::Add, Box::new(loadaddr()), Box::new(size.clone())),
                ),
            ];
            largest = Expr::Call("MAX", vec![largest, size.clone()], pos);
            out.push(SectionsCommand::Output(Box::new(desc)));
            for (symbol, expr) in provided {
                out.push(SectionsCommand::Assign(Assignment {
                    symbol,
                    op: None,
                    expr,
                    provide: AssignMode::Provide,
                    pos,
                }));
            }
            out.push(assign(&next, Some(BinOp::Add), size));
        }
        out.push(assign(
            ".",
            None,
            Expr::Binary(BinOp::Add, Box::new(Expr::Sym(vma)), Box::new(largest)),
        ));
        Ok(out)
    }

    /// Whether a `(` here opens a section type such as `(NOLOAD)`.
    fn type_follows(&mut self) -> R<bool> {
        let save = self.at;
        self.expect("(")?;
        let word = self.peek(Mode::Name)?;
        self.at = save;
        Ok(
            matches!(&word, Tok::Word(w) if w.chars().all(|c| c.is_ascii_uppercase() || c == '_') && w.len() > 2),
        )
    }

    fn paren_expr(&mut self) -> R<Expr> {
        self.expect("(")?;
        let e = self.expr()?;
        self.expect(")")?;
        Ok(e)
    }

    /// An input section description after its first word (a file pattern, or `SORT`,
    /// `EXCLUDE_FILE`...).
    fn input_desc(&mut self, first: String, start: usize) -> R<InputDesc> {
        let mut desc = InputDesc {
            keep: false,
            file: String::new(),
            exclude_files: Vec::new(),
            sort_files: false,
            sections: Vec::new(),
            pos: self.pos_of(start),
        };
        let mut word = first;
        if word == "EXCLUDE_FILE" {
            desc.exclude_files = self.name_list()?;
            word = self.name("a file pattern")?;
        }
        if matches!(word.as_str(), "SORT" | "SORT_BY_NAME")
            && self.peek(Mode::Expr)? == Tok::Punct("(")
        {
            self.expect("(")?;
            word = self.name("a file pattern")?;
            self.expect(")")?;
            desc.sort_files = true;
        }
        desc.file = word;
        if !self.eat("(")? {
            return Ok(desc);
        }
        let mut exclude = Vec::new();
        loop {
            if self.eat(")")? {
                break;
            }
            if self.eat(",")? {
                continue;
            }
            let at = self.skip_space()?;
            let word = self.name("a section pattern")?;
            if word == "EXCLUDE_FILE" {
                exclude = self.name_list()?;
                continue;
            }
            let (pattern, sort) = if let Some(sort) = sort_keyword(&word) {
                self.sorted_pattern(sort, at)?
            } else {
                (word, Sort::None)
            };
            desc.sections.push(SectionPattern {
                exclude_files: std::mem::take(&mut exclude),
                pattern,
                sort,
            });
        }
        Ok(desc)
    }

    /// `SORT_BY_NAME(pattern)` (possibly nested) after the keyword.
    fn sorted_pattern(&mut self, outer: Sort, at: usize) -> R<(String, Sort)> {
        self.expect("(")?;
        let word = self.name("a section pattern")?;
        let (pattern, sort) = match sort_keyword(&word) {
            Some(inner) => {
                let (pattern, _) = self.sorted_pattern(inner, at)?;
                let sort = match (outer, inner) {
                    (Sort::Name, Sort::Alignment) => Sort::NameAlignment,
                    (Sort::Alignment, Sort::Name) => Sort::AlignmentName,
                    (outer, _) => outer,
                };
                (pattern, sort)
            }
            None => {
                // `SORT(.ctors.*)`: one pattern; several would each be sorted the same way.
                if !matches!(self.peek(Mode::Name)?, Tok::Punct(")")) {
                    let more = self.name("a section pattern")?;
                    return Err(self.error_at(
                        at,
                        format!(
                            "several patterns ({word} {more}) in one SORT: write each in its own"
                        ),
                    ));
                }
                (word, outer)
            }
        };
        self.expect(")")?;
        Ok((pattern, sort))
    }

    fn name_list(&mut self) -> R<Vec<String>> {
        self.expect("(")?;
        let mut names = Vec::new();
        loop {
            if self.eat(")")? {
                return Ok(names);
            }
            if self.eat(",")? {
                continue;
            }
            names.push(self.name("a file pattern")?);
        }
    }

    fn memory(&mut self, script: &mut Script) -> R<()> {
        self.expect("{")?;
        loop {
            let at = self.skip_space()?;
            if self.eat("}")? {
                return Ok(());
            }
            if self.eat(";")? {
                continue;
            }
            let name = self.name("a memory region name")?;
            let mut attrs = String::new();
            if self.eat("(")? {
                loop {
                    match self.next(Mode::Name)? {
                        Tok::Punct(")") => break,
                        Tok::Word(w) => attrs.push_str(&w),
                        Tok::Punct("!") => attrs.push('!'),
                        tok => return Err(self.error(format!("unexpected {tok} in attributes"))),
                    }
                }
            }
            self.expect(":")?;
            let origin = self.region_field(&["ORIGIN", "org", "o"])?;
            self.expect(",")?;
            let length = self.region_field(&["LENGTH", "len", "l"])?;
            script.memory.push(Region {
                name,
                attrs,
                origin,
                length,
                pos: self.pos_of(at),
            });
        }
    }

    fn region_field(&mut self, keywords: &[&str]) -> R<Expr> {
        let at = self.skip_space()?;
        let word = self.name(keywords[0])?;
        if !keywords.contains(&word.as_str()) {
            return Err(self.error_at(at, format!("expected {}, found '{word}'", keywords[0])));
        }
        self.expect("=")?;
        self.expr()
    }

    fn phdrs(&mut self, script: &mut Script) -> R<()> {
        self.expect("{")?;
        loop {
            let at = self.skip_space()?;
            if self.eat("}")? {
                return Ok(());
            }
            let name = self.name("a program header name")?;
            let type_at = self.skip_space()?;
            let p_type = match self.next(Mode::Expr)? {
                Tok::Word(w) => match w.as_str() {
                    "PT_NULL" => 0,
                    "PT_LOAD" => 1,
                    "PT_DYNAMIC" => 2,
                    "PT_INTERP" => 3,
                    "PT_NOTE" => 4,
                    "PT_SHLIB" => 5,
                    "PT_PHDR" => 6,
                    "PT_TLS" => 7,
                    "PT_GNU_EH_FRAME" => 0x6474_e550,
                    "PT_GNU_STACK" => 0x6474_e551,
                    "PT_GNU_RELRO" => 0x6474_e552,
                    "PT_GNU_PROPERTY" => 0x6474_e553,
                    _ => {
                        return Err(
                            self.error_at(type_at, format!("unknown program header type {w}"))
                        )
                    }
                },
                Tok::Num(n) => n as u32,
                tok => {
                    return Err(self.error_at(
                        type_at,
                        format!("expected a program header type, found {tok}"),
                    ))
                }
            };
            let mut phdr = Phdr {
                name,
                p_type,
                filehdr: false,
                phdrs: false,
                at: None,
                flags: None,
                pos: self.pos_of(at),
            };
            loop {
                if self.eat(";")? {
                    break;
                }
                let at = self.skip_space()?;
                match self.next(Mode::Name)? {
                    Tok::Word(w) if w == "FILEHDR" => phdr.filehdr = true,
                    Tok::Word(w) if w == "PHDRS" => phdr.phdrs = true,
                    Tok::Word(w) if w == "AT" => phdr.at = Some(self.paren_expr()?),
                    Tok::Word(w) if w == "FLAGS" => phdr.flags = Some(self.paren_expr()?),
                    tok => return Err(self.error_at(at, format!("expected ';', found {tok}"))),
                }
            }
            script.phdrs.push(phdr);
        }
    }

    // Expressions, with C's precedence (the GNU ld manual: "Operators").

    /// An expression; its size counts towards [`MAX_EXPR_NODES`] until the next statement.
    pub fn expr(&mut self) -> R<Expr> {
        let outer = self.expr_nodes == 0;
        let e = self.expr_inner();
        if outer {
            self.expr_nodes = 0;
        }
        e
    }

    fn expr_inner(&mut self) -> R<Expr> {
        let cond = self.binary(0)?;
        if self.eat("?")? {
            let a = self.expr()?;
            self.expect(":")?;
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(cond), Box::new(a), Box::new(b)));
        }
        Ok(cond)
    }

    fn binary(&mut self, min_prec: u8) -> R<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let (tok, _, end) = self.lex(Mode::Expr)?;
            let Tok::Punct(p) = tok else { break };
            let Some((op, prec)) = binop(p) else { break };
            if prec < min_prec {
                break;
            }
            self.at = end;
            let rhs = self.binary(prec + 1)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> R<Expr> {
        let (tok, start, end) = self.lex(Mode::Expr)?;
        self.expr_nodes += 1;
        if self.expr_nodes > MAX_EXPR_NODES {
            return Err(self.error_at(start, "expression too long or nested too deeply"));
        }
        self.at = end;
        match tok {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Punct("-") => Ok(Expr::Neg(Box::new(self.unary()?))),
            Tok::Punct("+") => self.unary(),
            Tok::Punct("!") => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::Punct("~") => Ok(Expr::BitNot(Box::new(self.unary()?))),
            Tok::Punct("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Str(s) => Ok(Expr::Sym(s)),
            Tok::Word(w) if w == "." => Ok(Expr::Dot),
            Tok::Word(w) => {
                if let Some((name, arity)) = FUNCTIONS.iter().find(|(n, _)| *n == w) {
                    let pos = self.pos_of(start);
                    let mut args = Vec::new();
                    if *arity.end() > 0 || self.peek(Mode::Expr)? == Tok::Punct("(") {
                        self.expect("(")?;
                        if !self.eat(")")? {
                            loop {
                                args.push(self.func_arg(name)?);
                                if self.eat(")")? {
                                    break;
                                }
                                self.expect(",")?;
                            }
                        }
                    }
                    if !arity.contains(&args.len()) {
                        return Err(self.error_at(
                            start,
                            format!("{name} takes {arity:?} arguments, not {}", args.len()),
                        ));
                    }
                    return Ok(Expr::Call(name, args, pos));
                }
                if self.peek(Mode::Expr)? == Tok::Punct("(")
                    && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                {
                    return Err(self.error_at(start, format!("unknown function {w}")));
                }
                Ok(Expr::Sym(w))
            }
            Tok::End => Err(self.error_at(start, "expected an expression, found end of file")),
            tok => Err(self.error_at(start, format!("expected an expression, found {tok}"))),
        }
    }

    /// A function's argument: a section, region or segment name where the function takes
    /// one, else an expression.
    fn func_arg(&mut self, func: &str) -> R<Expr> {
        let takes_name = matches!(
            func,
            "ADDR"
                | "LOADADDR"
                | "SIZEOF"
                | "ALIGNOF"
                | "ORIGIN"
                | "LENGTH"
                | "DEFINED"
                | "CONSTANT"
        );
        if takes_name {
            let name = self.name("a name")?;
            return Ok(Expr::Sym(name));
        }
        self.expr()
    }
}

fn is_assign_op(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::Punct("=" | "+=" | "-=" | "*=" | "/=" | "<<=" | ">>=" | "&=" | "|=" | "^=")
    )
}

fn punct(p: &str) -> &'static str {
    PUNCT.iter().find(|q| **q == p).copied().unwrap_or("?")
}

fn sort_keyword(word: &str) -> Option<Sort> {
    match word {
        "SORT" | "SORT_BY_NAME" => Some(Sort::Name),
        "SORT_BY_ALIGNMENT" => Some(Sort::Alignment),
        "SORT_BY_INIT_PRIORITY" => Some(Sort::InitPriority),
        "SORT_NONE" => Some(Sort::None),
        _ => None,
    }
}

fn binop(p: &str) -> Option<(BinOp, u8)> {
    Some(match p {
        "*" => (BinOp::Mul, 10),
        "/" => (BinOp::Div, 10),
        "%" => (BinOp::Rem, 10),
        "+" => (BinOp::Add, 9),
        "-" => (BinOp::Sub, 9),
        "<<" => (BinOp::Shl, 8),
        ">>" => (BinOp::Shr, 8),
        "<" => (BinOp::Lt, 7),
        "<=" => (BinOp::Le, 7),
        ">" => (BinOp::Gt, 7),
        ">=" => (BinOp::Ge, 7),
        "==" => (BinOp::Eq, 6),
        "!=" => (BinOp::Ne, 6),
        "&" => (BinOp::And, 5),
        "^" => (BinOp::Xor, 4),
        "|" => (BinOp::Or, 3),
        "&&" => (BinOp::LogAnd, 2),
        "||" => (BinOp::LogOr, 1),
        _ => return None,
    })
}

/// A number as GNU ld reads one: `0x` hex, a leading `0` octal, else decimal; `K` and `M`
/// multiply by 1024 and 1024²; `h`/`o`/`b`/`d` suffixes give the base.
fn parse_number(s: &str) -> Option<u64> {
    let (s, scale) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1024),
        b'M' | b'm' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    let value = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()?
    } else if let Some(hex) = s.strip_suffix(['h', 'H']) {
        u64::from_str_radix(hex, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    value.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, as_needed: bool) -> ScriptInput {
        ScriptInput {
            entry: Entry::File(path.to_string()),
            as_needed,
        }
    }

    #[test]
    fn debian_libc_so() {
        let text =
            "/* GNU ld script\n   Use the shared library, but some functions are only in\n   \
                    the static library, so try that secondarily.  */\n\
                    OUTPUT_FORMAT(elf64-x86-64)\n\
                    GROUP ( /lib/x86_64-linux-gnu/libc.so.6 \
                    /usr/lib/x86_64-linux-gnu/libc_nonshared.a  \
                    AS_NEEDED ( /lib64/ld-linux-x86-64.so.2 ) )\n";
        let script = parse(text, "libc.so").expect("parses");
        assert_eq!(
            script.inputs,
            vec![InputCommand::Group(vec![
                file("/lib/x86_64-linux-gnu/libc.so.6", false),
                file("/usr/lib/x86_64-linux-gnu/libc_nonshared.a", false),
                file("/lib64/ld-linux-x86-64.so.2", true),
            ])]
        );
        assert!(!script.shapes_output());
    }

    #[test]
    fn commas_libraries_search_dir_and_three_arg_format() {
        let text = "OUTPUT_FORMAT(\"elf64-x86-64\", \"elf64-x86-64\", \"elf64-x86-64\")\n\
                    OUTPUT_ARCH(i386:x86-64);\nSEARCH_DIR(\"=/opt/lib\");\n\
                    INPUT(a.o,b.o -lfoo AS_NEEDED(-lbar) -l:libq.a)";
        let script = parse(text, "t").expect("parses");
        let lib = |n: &str, as_needed| ScriptInput {
            entry: Entry::Library(n.to_string()),
            as_needed,
        };
        assert_eq!(
            script.inputs,
            vec![
                InputCommand::SearchDir("=/opt/lib".to_string()),
                InputCommand::Input(vec![
                    file("a.o", false),
                    file("b.o", false),
                    lib("foo", false),
                    lib("bar", true),
                    lib(":libq.a", false),
                ]),
            ]
        );
    }

    #[test]
    fn rejects_other_formats_with_positions() {
        let err = parse("OUTPUT_FORMAT(elf32-i386)", "t").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, col: 15 });
        assert!(err.msg.contains("incompatible OUTPUT_FORMAT elf32-i386"));
        assert!(parse("GROUP(a.o", "t").is_err());
        assert!(parse("/* open", "t").is_err());
        assert!(parse("OUTPUT_FORMAT(a, b)", "t").is_err());
        let err = parse(
            "SECTIONS {\n  .text : { *(.text) }\n  .data : { *(.data) \n}",
            "t",
        )
        .unwrap_err();
        assert_eq!(err.pos.line, 4, "{err}");
        let err = parse("SECTIONS\n{\n  . = 0x1000 +;\n}", "t").unwrap_err();
        assert_eq!((err.pos.line, err.pos.col), (3, 15), "{err}");
        assert_eq!(
            err.to_string(),
            "3:15: expected an expression, found ';'\n>>>   . = 0x1000 +;\n>>>               ^"
        );
    }

    #[test]
    fn empty_script_is_fine() {
        let script = parse(" /* nothing */ \n", "t").unwrap();
        assert!(script.inputs.is_empty() && !script.shapes_output());
    }

    #[test]
    fn sections_memory_phdrs() {
        let text = r#"
ENTRY(_start)
MEMORY { rom (rx) : ORIGIN = 0x100000, LENGTH = 64K
         ram (!rx) : org = 0x200000, l = 1M }
PHDRS { text PT_LOAD FILEHDR PHDRS; data PT_LOAD FLAGS(6); }
SECTIONS
{
  . = 0x100000 + SIZEOF_HEADERS;
  .text ALIGN(16) : AT(0x1000) ALIGN(32) SUBALIGN(8) {
    KEEP(*(.multiboot))
    *(.text .text.*)
    EXCLUDE_FILE(*crtend.o) *(.dtors)
    *(EXCLUDE_FILE(a.o b.o) .ctors)
    SORT_BY_NAME(*)(.sorted.*)
    KEEP(*(SORT_BY_NAME(.init_array.*)))
    *(SORT_BY_ALIGNMENT(SORT_BY_NAME(.x*)))
    __etext = .;
    BYTE(1) SHORT(2) LONG(3) QUAD(4)
    FILL(0x90909090)
    . = ALIGN(8);
  } > rom AT> ram :text =0x90
  PROVIDE(__end = .);
  .bss (NOLOAD) : { *(.bss) *(COMMON) } >ram :data
  /DISCARD/ : { *(.comment) *(.note.GNU-stack) }
  x = DEFINED(y) ? y : 3 * (2 + 1) - -1;
  ASSERT(x < 10, "x too big")
}
"#;
        let s = parse(text, "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.entry.as_deref(), Some("_start"));
        assert_eq!(s.memory.len(), 2);
        assert_eq!(s.memory[1].attrs, "!rx");
        assert_eq!(s.phdrs.len(), 2);
        assert!(s.phdrs[0].filehdr && s.phdrs[0].phdrs);
        let outs: Vec<&OutputDesc> = s.outputs().collect();
        assert_eq!(outs.len(), 3);
        let text = outs[0];
        assert_eq!(text.name, ".text");
        assert!(text.addr.is_some() && text.align.is_some() && text.at.is_some());
        assert!(text.subalign.is_some());
        assert_eq!(text.region.as_deref(), Some("rom"));
        assert_eq!(text.lma_region.as_deref(), Some("ram"));
        assert_eq!(text.phdrs, vec!["text"]);
        assert!(text.fill.is_some());
        let inputs: Vec<&InputDesc> = text
            .commands
            .iter()
            .filter_map(|c| match c {
                OutputCommand::Input(i) => Some(i),
                _ => None,
            })
            .collect();
        assert!(inputs[0].keep);
        assert_eq!(inputs[1].sections.len(), 2);
        assert_eq!(inputs[2].exclude_files, vec!["*crtend.o"]);
        assert_eq!(inputs[3].sections[0].exclude_files, vec!["a.o", "b.o"]);
        assert!(inputs[4].sort_files);
        assert_eq!(inputs[5].sections[0].sort, Sort::Name);
        assert_eq!(inputs[6].sections[0].sort, Sort::AlignmentName);
        assert!(outs[1].noload);
        assert_eq!(outs[2].name, "/DISCARD/");
        let names: Vec<&str> = s.assignments().map(|a| a.symbol.as_str()).collect();
        assert_eq!(names, vec!["__etext", "__end", "x"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("4K"), Some(4096));
        assert_eq!(parse_number("1M"), Some(1 << 20));
        assert_eq!(parse_number("010"), Some(8));
        assert_eq!(parse_number("12"), Some(12));
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("1x"), None);
    }

    #[test]
    fn fedora_package_note_script() {
        let text = "SECTIONS\n{\n    .note.package (READONLY) : ALIGN(4) {\n        \
                    BYTE(0x04) BYTE(0x00) BYTE(0x00) BYTE(0x00) /* Length of Owner including NUL */\n    \
                    }\n}\nINSERT AFTER .note.gnu.build-id;\n";
        let s = parse(text, "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.insert, Some((true, ".note.gnu.build-id".to_string())));
        assert_eq!(s.outputs().next().unwrap().commands.len(), 4);
    }
}
