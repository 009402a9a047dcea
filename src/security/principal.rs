//! The principal of a TLS client certificate, as Kafka's DefaultKafkaPrincipalBuilder makes it:
//! the subject's distinguished name as Java's `X500Principal.getName()` writes it (RFC 2253),
//! mapped by `ssl.principal.mapping.rules` (Kafka's SslPrincipalMapper: `DEFAULT`, or
//! `RULE:pattern/replacement/[LU]`, the first rule whose pattern matches the whole name wins).

use x509_parser::asn1_rs::ToDer;
use x509_parser::prelude::*;

/// One `ssl.principal.mapping.rules` rule.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: regex::Regex,
        /// In the regex crate's syntax (`${1}`), translated from Java's (`$1`, `\$`).
        replacement: String,
        lower: bool,
        upper: bool,
    },
}

/// A listener's mapping rules.
#[derive(Debug, Clone)]
pub struct Mapper {
    rules: Vec<Rule>,
    /// As configured, for error messages.
    text: String,
}

impl PartialEq for Mapper {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Mapper {}

impl Default for Mapper {
    fn default() -> Mapper {
        Mapper {
            rules: vec![Rule::Default],
            text: "DEFAULT".into(),
        }
    }
}

/// Reads up to an unescaped `/`: (the text with its escapes, the rest after the `/`).
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Java's replacement syntax (`$n` groups, `\x` a literal x) in the regex crate's.
fn replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{digits}}}"));
            }
            c => out.push(c),
        }
    }
    out
}

impl Mapper {
    /// Parses `ssl.principal.mapping.rules`; the reason when it cannot.
    pub fn parse(text: &str) -> Result<Mapper, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) =
                    until_slash(after).ok_or_else(|| format!("Invalid rule: {rest}"))?;
                let (replace, after) = match until_slash(after) {
                    Some(parts) => parts,
                    None => (after.split(',').next().unwrap_or(""), ""),
                };
                let flag = after.chars().next();
                let whole = format!("^(?:{pattern})$");
                rules.push(Rule::Replace {
                    pattern: regex::Regex::new(&whole)
                        .map_err(|e| format!("Invalid rule pattern {pattern}: {e}"))?,
                    replacement: replacement(replace),
                    lower: flag == Some('L'),
                    upper: flag == Some('U'),
                });
                rest = after;
            } else {
                return Err(format!("Invalid rule: {rest}"));
            }
            // Anything after a rule up to the next comma is ignored, as Kafka's `.*?` does.
            rest = match rest.split_once(',') {
                Some((_, next)) => next.trim_start(),
                None => "",
            };
        }
        Ok(Mapper {
            rules,
            text: text.to_string(),
        })
    }

    /// The principal name for distinguished name `dn`; Kafka's NoMatchingRule message when no
    /// rule applies.
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    lower,
                    upper,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace(dn, replacement.as_str()).into_owned();
                        return Ok(if *lower {
                            name.to_lowercase()
                        } else if *upper {
                            name.to_uppercase()
                        } else {
                            name
                        });
                    }
                }
            }
        }
        Err(format!("No rules apply to {dn}, rules [{}]", self.text))
    }
}

/// The keywords Java writes in RFC 2253 names; other attributes are written as their OID.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// An attribute value escaped as Java's `AVA.toRFC2253String` does.
fn escape(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        if ",=+<>#;\"\\".contains(c) || (c == ' ' && (i == 0 || i == last)) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject of DER certificate `der` as `X500Principal.getName()` writes it.
pub fn subject_dn(der: &[u8]) -> Result<String, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let mut avas = Vec::new();
        for ava in rdn.iter() {
            let oid = ava.attr_type().to_id_string();
            let text = match (keyword(&oid), ava.as_str()) {
                (Some(k), Ok(v)) => format!("{k}={}", escape(v)),
                _ => {
                    let der = ava
                        .attr_value()
                        .to_der_vec()
                        .map_err(|e| format!("unreadable name attribute: {e}"))?;
                    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{}=#{hex}", keyword(&oid).unwrap_or(&oid))
                }
            };
            avas.push(text);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keeps_the_name() {
        let m = Mapper::parse("DEFAULT").unwrap();
        assert_eq!(m.name("CN=a,O=b").unwrap(), "CN=a,O=b");
    }

    #[test]
    fn rules_as_kafkas_documentation_gives_them() {
        let m = Mapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.name("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "serviceuser"
        );
        assert_eq!(
            m.name("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "adminuser@admin"
        );
        assert_eq!(
            m.name("OU=x,CN=Client1.Example").unwrap(),
            "client1.example"
        );
        assert_eq!(m.name("O=nothing").unwrap(), "O=nothing");
        let upper = Mapper::parse("RULE:^CN=(.*)$/$1x/U").unwrap();
        assert_eq!(upper.name("CN=abc").unwrap(), "ABCX");
        assert_eq!(
            upper.name("O=z").unwrap_err(),
            "No rules apply to O=z, rules [RULE:^CN=(.*)$/$1x/U]"
        );
        assert!(Mapper::parse("NONSENSE").is_err());
        assert!(Mapper::parse("RULE:(/x/").is_err());
    }

    #[test]
    fn subject_names_as_java_writes_them() {
        let mut params = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_dn(cert.der()).unwrap(),
            "CN=alice,O=Acme\\, Inc,C=US"
        );
    }
}
