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
        /// The whole-name test (Java's `Matcher.matches`).
        whole: regex::Regex,
        /// The pattern as written, for Java's `String.replaceAll`.
        pattern: regex::Regex,
        /// Java's replacement text, after Kafka's `escapeLiteralBackReferences`.
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

/// Kafka's `SslPrincipalMapper.RULE_PATTERN` (the regex crate's leftmost-first alternation and
/// lazy quantifiers choose as Java's do).
const RULE_PATTERN: &str = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)";

/// Kafka's `escapeLiteralBackReferences`, quirks included (it keeps the positions found in the
/// text as given while inserting into the text it builds): a `$n` naming no group becomes a
/// literal `\$n`.
fn escape_literal_back_references(unescaped: &str, groups: usize) -> String {
    if groups == 0 {
        return unescaped.to_string();
    }
    let back_ref = regex::Regex::new(r"\$(\d+)").expect("a valid pattern");
    let mut value = unescaped.to_string();
    for c in back_ref.captures_iter(unescaped) {
        let digits = &c[1];
        if digits.starts_with('0') {
            continue;
        }
        let mut index: u128 = digits.parse().unwrap_or(u128::MAX);
        while index > groups as u128 && index >= 10 {
            index /= 10;
        }
        if index > groups as u128 {
            let start = c.get(1).map_or(0, |m| m.start());
            if start == 0 || start > value.len() || !value.is_char_boundary(start - 1) {
                continue;
            }
            value = format!("{}\\{}", &value[..start - 1], &value[start - 1..]);
        }
    }
    value
}

/// Java's `Matcher.appendReplacement` of `replacement` for one match: `\x` is a literal x, `$n`
/// a group (digits taken while the number stays a group), `${name}` a named group.
fn expand(replacement: &str, caps: &regex::Captures, out: &mut String) -> Result<(), String> {
    let groups = caps.len() - 1;
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(x) => out.push(x),
                None => return Err("character to be escaped is missing".into()),
            },
            '$' => {
                let group = match chars.next() {
                    Some('{') => {
                        let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                        caps.name(&name)
                            .ok_or_else(|| format!("No group with name {{{name}}}"))?
                            .as_str()
                            .to_string()
                    }
                    Some(d) if d.is_ascii_digit() => {
                        let mut n = d.to_digit(10).unwrap_or(0) as usize;
                        if n > groups {
                            return Err(format!("No group {n}"));
                        }
                        while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                            let longer = n * 10 + next as usize;
                            if longer > groups {
                                break;
                            }
                            n = longer;
                            chars.next();
                        }
                        caps.get(n).map_or("", |m| m.as_str()).to_string()
                    }
                    _ => return Err("Illegal group reference".into()),
                };
                out.push_str(&group);
            }
            c => out.push(c),
        }
    }
    Ok(())
}

impl Mapper {
    /// Parses `ssl.principal.mapping.rules` as Kafka's SslPrincipalMapper does (its
    /// `RULE_SPLITTER`, then each rule whole by its `RULE_PARSER`); the reason when it cannot.
    /// Patterns are the regex crate's syntax, which is Java's for what names need (no
    /// look-around or back-references: such a rule stops start-up).
    pub fn parse(text: &str) -> Result<Mapper, String> {
        let splitter = regex::Regex::new(&format!(r"\s*({RULE_PATTERN})\s*(,\s*|$)"))
            .expect("a valid pattern");
        let parser = regex::Regex::new(&format!("^(?:{RULE_PATTERN})")).expect("a valid pattern");
        let mut rules = Vec::new();
        for split in splitter.captures_iter(text.trim()) {
            let rule = split.get(1).map_or("", |m| m.as_str());
            let Some(c) = parser.captures(rule) else {
                return Err(format!("Invalid rule: {rule}"));
            };
            let end = c.get(0).map_or(0, |m| m.end());
            if end != rule.len() {
                return Err(format!(
                    "Invalid rule: `{rule}`, unmatched substring: `{}`",
                    &rule[end..]
                ));
            }
            if c.get(1).is_some() {
                rules.push(Rule::Default);
            } else if let Some(pattern) = c.get(2) {
                let pattern = pattern.as_str();
                let invalid = |e: regex::Error| format!("Invalid rule pattern {pattern}: {e}");
                let compiled = regex::Regex::new(pattern).map_err(invalid)?;
                let flag = c.get(6).map_or("", |m| m.as_str());
                rules.push(Rule::Replace {
                    whole: regex::Regex::new(&format!("^(?:{pattern})$")).map_err(invalid)?,
                    replacement: escape_literal_back_references(
                        c.get(4).map_or("", |m| m.as_str()),
                        compiled.captures_len() - 1,
                    ),
                    pattern: compiled,
                    lower: flag == "L",
                    upper: flag == "U",
                });
            }
            // Empty rules are ignored, as Kafka ignores them.
        }
        Ok(Mapper {
            rules,
            text: text.to_string(),
        })
    }

    /// The principal name for distinguished name `dn`; Kafka's NoMatchingRule message when no
    /// rule applies, or why a rule's replacement cannot be made.
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    whole,
                    pattern,
                    replacement,
                    lower,
                    upper,
                } => {
                    if !whole.is_match(dn) {
                        continue;
                    }
                    // Java's `replaceAll`: every match, left to right, an empty one right
                    // after another match included (the regex crate's iterator skips those).
                    let mut name = String::new();
                    let (mut last, mut from) = (0, 0);
                    while from <= dn.len() {
                        let Some(caps) = pattern.captures_at(dn, from) else {
                            break;
                        };
                        let m = caps.get(0).expect("group 0");
                        name.push_str(&dn[last..m.start()]);
                        expand(replacement, &caps, &mut name)?;
                        last = m.end();
                        from = match dn[m.end()..].chars().next() {
                            _ if m.end() > m.start() => m.end(),
                            Some(c) => m.end() + c.len_utf8(),
                            None => dn.len() + 1,
                        };
                    }
                    name.push_str(&dn[last..]);
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

    /// What Kafka 4.1's SslPrincipalMapper gives for rules that are easy to get wrong (checked
    /// against it with the same inputs).
    #[test]
    fn kafkas_quirks() {
        let dn = "CN=alice,OU=eng,O=acme";
        let name = |rules: &str| Mapper::parse(rules).unwrap().name(dn).unwrap();
        // replaceAll: the unanchored pattern also matches the empty end.
        assert_eq!(name("RULE:(.*)/u-$1/"), "u-CN=alice,OU=eng,O=acmeu-");
        // $12 with one group is group 1 then "2"; $9 names no group and stays literal.
        assert_eq!(name("RULE:^CN=([a-z]+),.*$/$12/"), "alice2");
        assert_eq!(name("RULE:^CN=([a-z]+),.*$/$9/"), "$9");
        assert_eq!(name("RULE:CN=admin|CN=.*/x/"), "x");
        let escaped = "CN=admin\\,OU=x,OU=eng,O=acme";
        let on = |rules: &str| Mapper::parse(rules).unwrap().name(escaped).unwrap();
        assert_eq!(on("RULE:CN=admin|CN=.*/x/"), "x\\,OU=x,OU=eng,O=acme");
        assert_eq!(on("RULE:^CN=(.*?),.*$/$1/"), "admin\\");
        for (refused, rest) in [
            ("RULE:abc/def", "RULE:abc/def"),
            ("RULE:a/b/Lxyz", "xyz"),
            ("RULE:a/b/u", "u"),
        ] {
            assert_eq!(
                Mapper::parse(refused).unwrap_err(),
                format!("Invalid rule: `{refused}`, unmatched substring: `{rest}`")
            );
        }
        assert!(Mapper::parse(",,,").is_ok());
        assert_eq!(Mapper::parse(" DEFAULT , ").unwrap().name(dn).unwrap(), dn);
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
