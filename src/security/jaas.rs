//! `sasl.jaas.config` values as Kafka reads them (`JaasConfig`): one login module, its control
//! flag and its options, `loginModuleClass controlFlag (optionName=optionValue)*;`. Values are
//! words or double-quoted strings with Java's `StreamTokenizer` escapes. Errors never quote any
//! part of the value: it holds passwords, and a malformed one may put a password anywhere.

use std::collections::BTreeMap;

/// One login module of a JAAS configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for LoginModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Options hold passwords: only their names are shown.
        f.debug_struct("LoginModule")
            .field("class", &self.class)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '=' => out.push(Token::Equals),
            ';' => out.push(Token::Semicolon),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("a quoted value is not closed".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some(other) => s.push(other),
                            None => return Err("a quoted value is not closed".into()),
                        },
                        Some(other) => s.push(other),
                    }
                }
                out.push(Token::Quoted(s));
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n == '=' || n == ';' || n == '"' {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

/// Parses a `sasl.jaas.config` value holding exactly one login module, as Kafka requires of it.
pub fn parse(text: &str) -> Result<LoginModule, String> {
    let mut t = tokens(text)?.into_iter().peekable();
    let class = match t.next() {
        Some(Token::Word(w)) => w,
        _ => return Err("expected a login module class".into()),
    };
    match t.next() {
        Some(Token::Word(flag))
            if ["required", "requisite", "sufficient", "optional"]
                .contains(&flag.to_ascii_lowercase().as_str()) => {}
        _ => {
            return Err(
                "expected the control flag (required, requisite, sufficient or optional) after the login module".into()
            )
        }
    }
    let mut options = BTreeMap::new();
    loop {
        match t.next() {
            Some(Token::Semicolon) => break,
            Some(Token::Word(name)) => {
                if t.next() != Some(Token::Equals) {
                    return Err("expected '=' after an option name".into());
                }
                let value = match t.next() {
                    Some(Token::Word(v) | Token::Quoted(v)) => v,
                    _ => return Err("an option has no value".into()),
                };
                options.insert(name, value);
            }
            _ => return Err("expected option=value pairs ended by ';'".into()),
        }
    }
    if t.next().is_some() {
        return Err("must contain exactly one login module".into());
    }
    Ok(LoginModule { class, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_login_module_with_users() {
        let m = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="quote\"and;semi=";"#,
        )
        .unwrap();
        assert_eq!(
            m.class,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(m.options["user_alice"], "quote\"and;semi=");
        assert_eq!(m.options["user_admin"], "admin-secret");
        assert_eq!(m.options.len(), 4);
        assert!(!format!("{m:?}").contains("secret"));
    }

    #[test]
    fn a_scram_login_module_without_options() {
        let m = parse("org.apache.kafka.common.security.scram.ScramLoginModule required;").unwrap();
        assert!(m.options.is_empty());
    }

    #[test]
    fn malformed_configs_are_refused_without_quoting_them() {
        for bad in [
            "",
            "Module;",
            "Module required user_a=\"secret-1\"",
            "Module required user_a=;",
            "Module required user_a \"secret-1\";",
            "Module required user_a=\"secret-1;",
            "Module required; Other required;",
            "Module maybe;",
            "Module required secret-1 user_a=\"x\";",
            "secret-1 user_a=\"x\";",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("secret-1"), "{bad}: {e}");
        }
    }
}
