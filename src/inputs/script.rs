//! Parsing of the small linker scripts that stand in for input files, such as Debian's
//! `libc.so`: `GROUP(...)`, `INPUT(...)` (with `AS_NEEDED(...)` and `-lNAME` entries inside),
//! `SEARCH_DIR(...)`, `OUTPUT_FORMAT(...)` and `OUTPUT_ARCH(...)`, with `/* comments */`.
//!
//! This module only turns text into [`Command`]s; it opens no files. Finding the files a
//! script names is `inputs::search`'s job. Full linker scripts (`SECTIONS`, `MEMORY`,
//! assignments...) are not accepted here.

use std::fmt;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `GROUP(...)`: the files are searched repeatedly as a group.
    Group(Vec<ScriptInput>),
    /// `INPUT(...)`: the files are linked as if named on the command line.
    Input(Vec<ScriptInput>),
    /// `SEARCH_DIR(path)`.
    SearchDir(String),
}

/// Why a script was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptError {
    /// The text is not a script weld understands.
    Syntax(String),
    /// `OUTPUT_FORMAT` names a format other than x86-64 ELF64.
    IncompatibleFormat(String),
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Syntax(msg) => write!(f, "syntax error in linker script: {msg}"),
            ScriptError::IncompatibleFormat(format) => {
                write!(
                    f,
                    "incompatible OUTPUT_FORMAT {format} (weld links elf64-x86-64 only)"
                )
            }
        }
    }
}

impl std::error::Error for ScriptError {}

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Vec<Command>, ScriptError> {
    let tokens = tokenize(text)?;
    Parser { tokens, pos: 0 }.script()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Comma,
    Semicolon,
    /// A name, path or keyword; quoted strings also end up here.
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, ScriptError> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if let Some(after) = rest.strip_prefix("/*") {
            let end = after
                .find("*/")
                .ok_or_else(|| syntax("unterminated comment"))?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('"') {
            let end = after
                .find('"')
                .ok_or_else(|| syntax("unterminated string"))?;
            tokens.push(Token::Word(after[..end].to_string()));
            rest = &after[end + 1..];
        } else if let Some(token) = punctuation(c) {
            tokens.push(token);
            rest = &rest[1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"' || punctuation(c).is_some())
                .unwrap_or(rest.len());
            tokens.push(Token::Word(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    Ok(tokens)
}

fn punctuation(c: char) -> Option<Token> {
    match c {
        '(' => Some(Token::Open),
        ')' => Some(Token::Close),
        ',' => Some(Token::Comma),
        ';' => Some(Token::Semicolon),
        _ => None,
    }
}

fn syntax(msg: impl Into<String>) -> ScriptError {
    ScriptError::Syntax(msg.into())
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn expect_open(&mut self, command: &str) -> Result<(), ScriptError> {
        match self.next() {
            Some(Token::Open) => Ok(()),
            _ => Err(syntax(format!("expected ( after {command}"))),
        }
    }

    fn script(mut self) -> Result<Vec<Command>, ScriptError> {
        let mut commands = Vec::new();
        while let Some(token) = self.next() {
            let word = match token {
                Token::Semicolon => continue,
                Token::Word(word) => word,
                Token::Open => return Err(syntax("unexpected (")),
                Token::Close => return Err(syntax("unexpected )")),
                Token::Comma => return Err(syntax("unexpected ,")),
            };
            match word.as_str() {
                "GROUP" => commands.push(Command::Group(self.inputs("GROUP")?)),
                "INPUT" => commands.push(Command::Input(self.inputs("INPUT")?)),
                "SEARCH_DIR" => {
                    let mut args = self.word_args("SEARCH_DIR")?;
                    match (args.pop(), args.is_empty()) {
                        (Some(dir), true) => commands.push(Command::SearchDir(dir)),
                        _ => return Err(syntax("SEARCH_DIR takes one directory")),
                    }
                }
                "OUTPUT_FORMAT" => {
                    let args = self.word_args("OUTPUT_FORMAT")?;
                    if args.len() != 1 && args.len() != 3 {
                        return Err(syntax("OUTPUT_FORMAT takes 1 or 3 arguments"));
                    }
                    // With three arguments the first is the default (the others are for
                    // -EB and -EL), which is what an x86-64 link uses.
                    let format = &args[0];
                    if !format.starts_with("elf64-x86-64") {
                        return Err(ScriptError::IncompatibleFormat(format.clone()));
                    }
                }
                "OUTPUT_ARCH" => {
                    self.word_args("OUTPUT_ARCH")?;
                }
                other => return Err(syntax(format!("unsupported command {other}"))),
            }
        }
        Ok(commands)
    }

    /// `( word [,] word ... )` after a command name.
    fn word_args(&mut self, command: &str) -> Result<Vec<String>, ScriptError> {
        self.expect_open(command)?;
        let mut words = Vec::new();
        loop {
            match self.next() {
                Some(Token::Word(word)) => words.push(word),
                Some(Token::Comma) => {}
                Some(Token::Close) => return Ok(words),
                Some(_) => return Err(syntax(format!("unexpected token in {command}"))),
                None => return Err(syntax(format!("missing ) after {command}"))),
            }
        }
    }

    /// The list of a `GROUP(...)` or `INPUT(...)`, with `AS_NEEDED(...)` inside.
    fn inputs(&mut self, command: &str) -> Result<Vec<ScriptInput>, ScriptError> {
        self.expect_open(command)?;
        let mut inputs = Vec::new();
        loop {
            match self.next() {
                Some(Token::Word(word))
                    if word == "AS_NEEDED" && self.peek() == Some(&Token::Open) =>
                {
                    for word in self.word_args("AS_NEEDED")? {
                        inputs.push(ScriptInput {
                            entry: entry(word),
                            as_needed: true,
                        });
                    }
                }
                Some(Token::Word(word)) => inputs.push(ScriptInput {
                    entry: entry(word),
                    as_needed: false,
                }),
                Some(Token::Comma) => {}
                Some(Token::Close) => return Ok(inputs),
                Some(_) => return Err(syntax(format!("unexpected token in {command}"))),
                None => return Err(syntax(format!("missing ) after {command}"))),
            }
        }
    }
}

fn entry(word: String) -> Entry {
    match word.strip_prefix("-l") {
        Some(name) if !name.is_empty() => Entry::Library(name.to_string()),
        _ => Entry::File(word),
    }
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
        let commands = parse(text).expect("parses");
        assert_eq!(
            commands,
            vec![Command::Group(vec![
                file("/lib/x86_64-linux-gnu/libc.so.6", false),
                file("/usr/lib/x86_64-linux-gnu/libc_nonshared.a", false),
                file("/lib64/ld-linux-x86-64.so.2", true),
            ])]
        );
    }

    #[test]
    fn commas_libraries_search_dir_and_three_arg_format() {
        let text = "OUTPUT_FORMAT(\"elf64-x86-64\", \"elf64-x86-64\", \"elf64-x86-64\")\n\
                    OUTPUT_ARCH(i386:x86-64);\nSEARCH_DIR(\"=/opt/lib\");\n\
                    INPUT(a.o,b.o -lfoo AS_NEEDED(-lbar))";
        let commands = parse(text).expect("parses");
        assert_eq!(
            commands,
            vec![
                Command::SearchDir("=/opt/lib".to_string()),
                Command::Input(vec![
                    file("a.o", false),
                    file("b.o", false),
                    ScriptInput {
                        entry: Entry::Library("foo".to_string()),
                        as_needed: false
                    },
                    ScriptInput {
                        entry: Entry::Library("bar".to_string()),
                        as_needed: true
                    },
                ]),
            ]
        );
    }

    #[test]
    fn rejects_other_formats_and_commands() {
        assert_eq!(
            parse("OUTPUT_FORMAT(elf32-i386)"),
            Err(ScriptError::IncompatibleFormat("elf32-i386".to_string()))
        );
        let err = parse("SECTIONS { .text : { *(.text) } }").unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax error in linker script: unsupported command SECTIONS"
        );
        assert!(parse("GROUP(a.o").is_err());
        assert!(parse("/* open").is_err());
        assert!(parse("OUTPUT_FORMAT(a, b)").is_err());
    }

    #[test]
    fn empty_script_is_fine() {
        assert_eq!(parse(" /* nothing */ \n"), Ok(vec![]));
    }
}
