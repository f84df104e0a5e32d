//! Keeping credentials out of error details: every `PortError` this crate returns goes
//! through [`Redactor::clean`], which names the dependency `rabbitmq` and removes the
//! password of any `scheme://user:password@` URL, and the configured password itself,
//! from the detail (the detail is for logs; it must never carry a secret). Also the
//! crate's one way to make an error, [`unavailable`] (URLs already redacted).

use plotq_ports::PortError;

/// The name every error of this crate gives as its dependency.
pub(crate) const DEPENDENCY: &str = "rabbitmq";

/// `Unavailable` from `rabbitmq`, any URL in the detail without its password (the
/// configured password is removed at the crate's edge, `Redactor::clean`).
pub(crate) fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, redact_urls(&e.to_string()))
}

/// What replaces a secret.
const MASK: &str = "***";

/// Secrets shorter than this are not searched for as bare text (masking every "a" of a
/// message would garble it); they are still masked inside URLs.
const MIN_BARE_SECRET: usize = 4;

/// Removes the configured credentials (and any URL's) from error details.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// The password of the configured URL, as written and percent-decoded.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

impl Redactor {
    pub(crate) fn for_url(url: &str) -> Self {
        let mut secrets = Vec::new();
        // One URL, or several separated by commas (a cluster's nodes).
        for password in plotq_ports::split_urls(url)
            .into_iter()
            .filter_map(url_password)
        {
            let decoded = percent_decode(password);
            for secret in [password.to_owned(), decoded] {
                if secret.len() >= MIN_BARE_SECRET && !secrets.contains(&secret) {
                    secrets.push(secret);
                }
            }
        }
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// `detail` without credentials.
    pub(crate) fn text(&self, detail: &str) -> String {
        let mut clean = redact_urls(detail);
        for secret in &self.secrets {
            clean = clean.replace(secret.as_str(), MASK);
        }
        clean
    }

    /// The same kind of error, from `rabbitmq`, with a detail free of credentials.
    pub(crate) fn clean(&self, error: PortError) -> PortError {
        match error {
            PortError::Unavailable { detail, .. } => {
                PortError::unavailable(DEPENDENCY, self.text(&detail))
            }
            PortError::Refused { detail, .. } => PortError::refused(DEPENDENCY, self.text(&detail)),
            PortError::Full { detail, .. } => PortError::Full {
                dependency: DEPENDENCY,
                detail: self.text(&detail),
            },
        }
    }
}

/// The password in `scheme://user:password@host…`, if there is one.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let userinfo = &rest[..userinfo_end(rest)?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// Where the userinfo of the authority starting `rest` ends (its `@`), if it has one.
/// The authority runs to the first whitespace or quote; its last `@` ends the userinfo
/// (so a password with an unescaped `/` or `@` is still covered; a path with an `@`
/// only gets masked too much, never too little).
fn userinfo_end(rest: &str) -> Option<usize> {
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
        .unwrap_or(rest.len());
    rest[..end].rfind('@')
}

/// Every `scheme://user:password@` in `text` becomes `scheme://user:***@`.
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        rest = tail;
        let Some(at) = userinfo_end(rest) else {
            continue;
        };
        match rest[..at].split_once(':') {
            Some((user, _password)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
            }
            None => out.push_str(&rest[..at]),
        }
        rest = &rest[at..];
    }
    out.push_str(rest);
    out
}

/// `%XX` escapes decoded (invalid ones kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_and_keep_the_rest() {
        assert_eq!(
            redact_urls("connecting to amqp://plotq:s3cret@rabbitmq:5672/%2f failed"),
            "connecting to amqp://plotq:***@rabbitmq:5672/%2f failed"
        );
        assert_eq!(
            redact_urls("a amqps://u:p@h/v and redis://:pw@r:6379, done"),
            "a amqps://u:***@h/v and redis://:***@r:6379, done"
        );
        assert_eq!(
            redact_urls("amqp://u:pa/ss@word@h:1/x"),
            "amqp://u:***@h:1/x",
            "unescaped `/` and `@` in a password"
        );
        for unchanged in [
            "amqp://127.0.0.1:5672/%2f",
            "amqp://user@host/v",
            "no url at all: a://",
            "",
        ] {
            assert_eq!(redact_urls(unchanged), unchanged);
        }
    }

    #[test]
    fn the_configured_password_is_masked_anywhere() {
        let r = Redactor::for_url("amqp://plotq:p%40ss-w0rd@rabbitmq:5672/%2f");
        assert_eq!(
            r.text("ACCESS_REFUSED for p@ss-w0rd (p%40ss-w0rd) at amqp://plotq:p%40ss-w0rd@rabbitmq:5672/%2f"),
            "ACCESS_REFUSED for *** (***) at amqp://plotq:***@rabbitmq:5672/%2f"
        );
        let nodes = Redactor::for_url("amqp://u:first-pw@a,amqp://u:second-pw@b");
        assert_eq!(
            nodes.text("no broker: first-pw, second-pw"),
            "no broker: ***, ***"
        );
        let short = Redactor::for_url("amqp://u:ab@h");
        assert_eq!(short.text("about amqp://u:ab@h"), "about amqp://u:***@h");
    }

    #[test]
    fn cleaned_errors_name_rabbitmq_and_keep_their_kind() {
        let r = Redactor::for_url("amqp://plotq:hunter22@h/%2f");
        let e = r.clean(PortError::refused("something-else", "hunter22 said no"));
        assert!(
            matches!(&e, PortError::Refused { dependency: "rabbitmq", detail } if detail == "*** said no"),
            "{e:?}"
        );
        let e = r.clean(PortError::unavailable(
            "x",
            "amqp://plotq:hunter22@h/%2f down",
        ));
        assert!(
            matches!(&e, PortError::Unavailable { dependency: "rabbitmq", detail } if detail == "amqp://plotq:***@h/%2f down"),
            "{e:?}"
        );
    }
}
