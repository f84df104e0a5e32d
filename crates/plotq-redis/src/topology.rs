//! `Topology`: whether plotq talks to one Redis node or to a Redis Cluster, and the
//! seed URLs, read from `RedisConfig::url` and `RedisConfig::cluster`. Pure parsing:
//! connecting to what it names is `link.rs`'s.
//!
//! Redis Cluster: with several node addresses (or `RedisConfig::cluster`), commands go
//! through the `redis` crate's cluster client, which follows the slot map (`MOVED`/`ASK`)
//! and reconnects to nodes on its own.

/// Where Redis is: one node, or the seed nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    Single(String),
    Cluster(Vec<String>),
}

impl Topology {
    /// `url` (one URL, or several separated by commas: `plotq_ports::split_urls`) and
    /// whether a cluster is forced. Every address must be a
    /// `redis://` URL (one node may also be `redis+unix://`); a cluster's are TCP
    /// addresses of database 0, as Redis Cluster has no other. The error names the bad
    /// address by position, never by content (URLs carry passwords).
    pub fn parse(url: &str, cluster: bool) -> Result<Self, String> {
        let nodes: Vec<String> = plotq_ports::split_urls(url)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let cluster = cluster || nodes.len() > 1;
        for (i, node) in nodes.iter().enumerate() {
            let which = format!("address {} of {}", i + 1, nodes.len());
            if node.starts_with("rediss://") {
                return Err(format!("{which}: TLS (rediss://) is not built into plotq"));
            }
            let info =
                redis::IntoConnectionInfo::into_connection_info(node.as_str()).map_err(|_| {
                    format!("{which} is not a Redis URL (redis://[user:password@]host:port)")
                })?;
            if cluster && !matches!(info.addr(), redis::ConnectionAddr::Tcp(..)) {
                return Err(format!("{which}: a Redis Cluster is reached over TCP"));
            }
            if cluster && info.redis_settings().db() != 0 {
                return Err(format!("{which}: a Redis Cluster has only database 0"));
            }
        }
        Ok(if cluster {
            Self::Cluster(nodes)
        } else {
            Self::Single(nodes.into_iter().next().unwrap_or_default())
        })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

#[cfg(test)]
mod tests {
    use super::Topology;

    #[test]
    fn one_url_is_one_node_unless_a_cluster_is_forced() {
        let url = "redis://:pw@127.0.0.1:6379/2";
        assert_eq!(
            Topology::parse(url, false),
            Ok(Topology::Single(url.to_owned()))
        );
        assert!(!Topology::parse(url, false).unwrap().is_cluster());
        assert_eq!(
            Topology::parse("redis://127.0.0.1:7101", true),
            Ok(Topology::Cluster(vec!["redis://127.0.0.1:7101".to_owned()]))
        );
    }

    #[test]
    fn several_urls_are_the_seeds_of_a_cluster() {
        let topology =
            Topology::parse("redis://127.0.0.1:7101,redis://127.0.0.1:7102", false).unwrap();
        assert_eq!(
            topology,
            Topology::Cluster(vec![
                "redis://127.0.0.1:7101".to_owned(),
                "redis://127.0.0.1:7102".to_owned()
            ])
        );
    }

    #[test]
    fn bad_addresses_are_named_by_position_never_by_content() {
        for (url, cluster, says) in [
            (
                "rediss://:s3cret@127.0.0.1:6379",
                false,
                "address 1 of 1: TLS",
            ),
            (
                "redis://127.0.0.1:7101,http://:s3cret@x",
                false,
                "address 2 of 2 is not",
            ),
            ("redis://:s3cret@127.0.0.1:7101/3", true, "only database 0"),
            ("redis+unix:///tmp/s3cret.sock", true, "over TCP"),
        ] {
            let err = Topology::parse(url, cluster).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
        assert!(Topology::parse("redis+unix:///tmp/redis.sock", false).is_ok());
    }
}
