//! Lists of dependency URLs in one setting (`PLOTQ_AMQP_URL`, `PLOTQ_REDIS_URL`: a
//! cluster's nodes, separated by commas): where one URL ends and the next begins.

/// The URLs of `text`, trimmed. A comma separates two URLs only where the next one
/// starts (`,scheme://`), so a comma inside a password, or between the hosts of one
/// MongoDB URL, stays within its URL.
pub fn split_urls(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    for (i, _) in text.match_indices(',') {
        if starts_url(&text[i + 1..]) {
            out.push(text[from..i].trim());
            from = i + 1;
        }
    }
    out.push(text[from..].trim());
    out
}

/// Whether `text` opens with `scheme://` (letters, digits, `+`, `-`, `.`), after spaces.
fn starts_url(text: &str) -> bool {
    text.trim_start()
        .split_once("://")
        .is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
}

#[cfg(test)]
mod tests {
    use super::split_urls;

    #[test]
    fn commas_split_only_where_a_url_starts() {
        assert_eq!(split_urls("redis://a:1"), ["redis://a:1"]);
        assert_eq!(
            split_urls("redis://:p@a:1, redis://:p@b:1,redis+unix:///s"),
            ["redis://:p@a:1", "redis://:p@b:1", "redis+unix:///s"]
        );
        assert_eq!(
            split_urls("amqp://u:pa,ss@h/%2f,amqps://u:x,y@k/v"),
            ["amqp://u:pa,ss@h/%2f", "amqps://u:x,y@k/v"]
        );
        assert_eq!(
            split_urls("mongodb://u:p@h1:27017,h2:27017/?replicaSet=rs0"),
            ["mongodb://u:p@h1:27017,h2:27017/?replicaSet=rs0"]
        );
        assert_eq!(split_urls(""), [""]);
        assert_eq!(split_urls("a,,b"), ["a,,b"]);
    }
}
