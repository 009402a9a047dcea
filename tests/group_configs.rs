//! Group configs (config resource type GROUP, 32; KIP-848) as Kafka 4.1.1 answers them:
//! DescribeConfigs of any group (existing or not) with its defaults from the broker's
//! `group.*` keys, IncrementalAlterConfigs and AlterConfigs validated with Kafka's messages,
//! validate_only, DELETE, persistence across a restart, and ListConfigResources listing the
//! groups that have (or had, since start-up) dynamic configs.

mod common;

use common::{Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

const GROUP: i8 = 32;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const GROUP_CONFIG: i8 = 8;
const DEFAULT_CONFIG: i8 = 5;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// An alteration's answer: (error code, message).
type Answer = (i16, Option<String>);

/// IncrementalAlterConfigs operations: (key, operation, value).
type Ops<'a> = Vec<(&'a str, i8, Option<&'a str>)>;

/// One group's configs: (name, value, source, synonyms (name, value, source), type, has doc).
type Described = Vec<(String, String, i8, Vec<(String, String, i8)>, i8, bool)>;

async fn describe_full(
    c: &mut Client,
    group: &str,
    keys: Option<&[&str]>,
    version: i16,
) -> (i16, Option<String>, Described) {
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = GROUP;
    res.resource_name = s(group);
    res.configuration_keys = keys.map(|k| k.iter().map(|k| s(k)).collect());
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    req.include_synonyms = true;
    req.include_documentation = version >= 3;
    let r: DescribeConfigsResponse = c.request(ApiKey::DescribeConfigs, version, &req).await;
    let r = &r.results[0];
    assert_eq!((r.resource_type, r.resource_name.as_str()), (GROUP, group));
    let configs = r
        .configs
        .iter()
        .map(|e| {
            assert!(!e.read_only && !e.is_sensitive, "{e:?}");
            (
                e.name.to_string(),
                e.value.as_deref().unwrap_or("<null>").to_string(),
                e.config_source,
                e.synonyms
                    .iter()
                    .map(|s| {
                        (
                            s.name.to_string(),
                            s.value.as_deref().unwrap_or("<null>").to_string(),
                            s.source,
                        )
                    })
                    .collect(),
                e.config_type,
                e.documentation.as_deref().is_some_and(|d| !d.is_empty()),
            )
        })
        .collect();
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
        configs,
    )
}

/// name -> (value, source) of every config of a group.
async fn describe(c: &mut Client, group: &str) -> Vec<(String, String, i8)> {
    let (err, _, configs) = describe_full(c, group, None, 4).await;
    assert_eq!(err, 0);
    configs
        .into_iter()
        .map(|(n, v, src, ..)| (n, v, src))
        .collect()
}

async fn value_of(c: &mut Client, group: &str, key: &str) -> (String, i8) {
    describe(c, group)
        .await
        .into_iter()
        .find(|(n, ..)| n == key)
        .map(|(_, v, src)| (v, src))
        .unwrap()
}

/// IncrementalAlterConfigs of one group -> (error code, message).
async fn alter_incremental(
    c: &mut Client,
    group: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> Answer {
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = GROUP;
    res.resource_name = s(group);
    for (name, op, value) in ops {
        let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
        cfg.name = s(name);
        cfg.config_operation = *op;
        cfg.value = value.map(s);
        res.configs.push(cfg);
    }
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![res];
    req.validate_only = validate_only;
    let r: IncrementalAlterConfigsResponse =
        c.request(ApiKey::IncrementalAlterConfigs, 1, &req).await;
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// AlterConfigs (whole replacement) of one group -> (error code, message).
async fn alter_legacy(
    c: &mut Client,
    group: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
) -> Answer {
    let mut res = alter_configs_request::AlterConfigsResource::default();
    res.resource_type = GROUP;
    res.resource_name = s(group);
    for (name, value) in configs {
        let mut cfg = alter_configs_request::AlterableConfig::default();
        cfg.name = s(name);
        cfg.value = value.map(s);
        res.configs.push(cfg);
    }
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![res];
    req.validate_only = validate_only;
    let r: AlterConfigsResponse = c.request(ApiKey::AlterConfigs, 2, &req).await;
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

async fn listed_groups(c: &mut Client) -> Vec<String> {
    let mut req = ListConfigResourcesRequest::default();
    req.resource_types = vec![GROUP];
    let r: ListConfigResourcesResponse = c.request(ApiKey::ListConfigResources, 1, &req).await;
    assert_eq!(r.error_code, 0);
    r.config_resources
        .iter()
        .map(|r| {
            assert_eq!(r.resource_type, GROUP);
            r.resource_name.to_string()
        })
        .collect()
}

fn ok() -> Answer {
    (0, None)
}

fn invalid_config(m: &str) -> Answer {
    (ResponseError::InvalidConfig.code(), Some(m.to_string()))
}

fn invalid_request(m: &str) -> Answer {
    (ResponseError::InvalidRequest.code(), Some(m.to_string()))
}

#[tokio::test]
async fn any_group_describes_with_kafkas_defaults_in_kafkas_order() {
    let b = TestBroker::start(&[("group.consumer.session.timeout.ms", "50000")]).await;
    let mut c = b.client().await;
    let (err, msg, configs) = describe_full(&mut c, "no-such-group", None, 4).await;
    assert_eq!((err, msg.as_deref()), (0, Some("")));
    let int = 3;
    let string = 2;
    let expected: Vec<(&str, &str, i8)> = vec![
        ("consumer.session.timeout.ms", "50000", int),
        ("streams.heartbeat.interval.ms", "5000", int),
        ("share.auto.offset.reset", "latest", string),
        ("share.record.lock.duration.ms", "30000", int),
        ("consumer.heartbeat.interval.ms", "5000", int),
        ("share.session.timeout.ms", "45000", int),
        ("share.isolation.level", "read_uncommitted", string),
        ("streams.session.timeout.ms", "45000", int),
        ("share.heartbeat.interval.ms", "5000", int),
        ("streams.num.standby.replicas", "0", int),
    ];
    let got: Vec<(&str, &str, i8)> = configs
        .iter()
        .map(|(n, v, _, _, ty, _)| (n.as_str(), v.as_str(), *ty))
        .collect();
    assert_eq!(got, expected);
    for (name, value, source, synonyms, _, doc) in &configs {
        // The broker's group.consumer.session.timeout.ms gives the value; Kafka still reports
        // DEFAULT_CONFIG, with the group key itself as the only synonym.
        assert_eq!(*source, DEFAULT_CONFIG, "{name}");
        assert_eq!(
            synonyms,
            &vec![(name.clone(), value.clone(), DEFAULT_CONFIG)]
        );
        assert!(doc, "{name}");
    }

    // configuration_keys filter; unknown keys are ignored; v1 has no documentation.
    let (err, _, configs) =
        describe_full(&mut c, "g", Some(&["share.isolation.level", "nope"]), 1).await;
    assert_eq!(err, 0);
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].0, "share.isolation.level");
    assert!(!configs[0].5);

    let (err, msg, configs) = describe_full(&mut c, "", None, 4).await;
    assert_eq!(
        (err, msg.as_deref(), configs.len()),
        (
            ResponseError::InvalidRequest.code(),
            Some("Group name must not be empty"),
            0
        )
    );
    // Describing creates nothing.
    assert!(listed_groups(&mut c).await.is_empty());
    b.stop().await;
}

#[tokio::test]
async fn alterations_are_validated_with_kafkas_messages() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let cases: Vec<(Ops, Answer)> = vec![
        (vec![("consumer.session.timeout.ms", SET, Some(" 50000 "))], ok()),
        (vec![("nope", SET, Some("1"))], invalid_config("Unknown group config name: nope")),
        (
            vec![("consumer.session.timeout.ms", SET, Some("abc"))],
            invalid_config("Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"),
        ),
        (
            vec![("consumer.session.timeout.ms", SET, Some("0"))],
            invalid_config("Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1"),
        ),
        (
            vec![("consumer.session.timeout.ms", SET, Some("1000"))],
            invalid_config("consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"),
        ),
        (
            vec![("consumer.session.timeout.ms", SET, Some("70000"))],
            invalid_config("consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"),
        ),
        (
            vec![("consumer.heartbeat.interval.ms", SET, Some("16000"))],
            invalid_config("consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"),
        ),
        (
            vec![("share.auto.offset.reset", SET, Some("none"))],
            invalid_config("Invalid value none for configuration share.auto.offset.reset: Invalid value `none` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."),
        ),
        (vec![("share.auto.offset.reset", SET, Some("by_duration:PT1H"))], ok()),
        (
            vec![("share.isolation.level", SET, Some("READ_COMMITTED"))],
            invalid_config("Invalid value READ_COMMITTED for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted"),
        ),
        (
            vec![("streams.num.standby.replicas", SET, Some("3"))],
            invalid_config("streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas"),
        ),
        (
            vec![("share.record.lock.duration.ms", SET, Some("10000"))],
            invalid_config("share.record.lock.duration.ms must be greater than or equal to group.share.min.record.lock.duration.ms"),
        ),
        (
            vec![("consumer.session.timeout.ms", APPEND, Some("1"))],
            invalid_config("Can't APPEND to key consumer.session.timeout.ms because its type is not LIST."),
        ),
        (
            vec![("consumer.session.timeout.ms", SET, None)],
            invalid_request("Null value not supported for : consumer.session.timeout.ms"),
        ),
        (
            vec![
                ("consumer.session.timeout.ms", SET, Some("50000")),
                ("consumer.session.timeout.ms", DELETE, None),
            ],
            invalid_request("Error due to duplicate config keys"),
        ),
        (vec![("consumer.session.timeout.ms", DELETE, None)], ok()),
        (
            vec![("consumer.session.timeout.ms", 7, Some("1"))],
            (ResponseError::UnknownServerError.code(), None),
        ),
    ];
    for (ops, expected) in &cases {
        assert_eq!(
            &alter_incremental(&mut c, "g", ops, true).await,
            expected,
            "{ops:?}"
        );
        assert_eq!(
            &alter_incremental(&mut c, "g", ops, false).await,
            expected,
            "{ops:?}"
        );
    }
    assert_eq!(
        alter_incremental(
            &mut c,
            "",
            &[("consumer.session.timeout.ms", SET, Some("50000"))],
            false
        )
        .await,
        invalid_request("Default group resources are not allowed.")
    );
    // The same group twice in one request: both refused.
    let mut req = IncrementalAlterConfigsRequest::default();
    for _ in 0..2 {
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = GROUP;
        res.resource_name = s("twice");
        req.resources.push(res);
    }
    let r: IncrementalAlterConfigsResponse =
        c.request(ApiKey::IncrementalAlterConfigs, 1, &req).await;
    for r in &r.responses {
        assert_eq!(
            (r.error_code, r.error_message.as_deref()),
            (
                ResponseError::InvalidRequest.code(),
                Some("Each resource must appear at most once.")
            )
        );
    }

    // Legacy AlterConfigs: the same checks, null values refused.
    assert_eq!(
        alter_legacy(&mut c, "g", &[("x", Some("1"))], false).await,
        invalid_config("Unknown group config name: x")
    );
    assert_eq!(
        alter_legacy(
            &mut c,
            "g",
            &[("consumer.heartbeat.interval.ms", None)],
            false
        )
        .await,
        invalid_request("Null value not supported for : consumer.heartbeat.interval.ms")
    );
    assert_eq!(
        alter_legacy(
            &mut c,
            "",
            &[("consumer.heartbeat.interval.ms", Some("6000"))],
            false
        )
        .await,
        invalid_request("Default group resources are not allowed.")
    );
    // The session timeout set by the first case was deleted by a later one.
    assert_eq!(
        value_of(&mut c, "g", "consumer.session.timeout.ms").await,
        ("45000".into(), DEFAULT_CONFIG)
    );
    b.stop().await;
}

#[tokio::test]
async fn set_delete_validate_only_and_restart() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert!(listed_groups(&mut c).await.is_empty());

    // validate_only changes nothing; neither does deleting an unset key.
    let set = [("consumer.session.timeout.ms", SET, Some("50000"))];
    assert_eq!(alter_incremental(&mut c, "g1", &set, true).await, ok());
    assert_eq!(
        alter_legacy(
            &mut c,
            "g1",
            &[("consumer.heartbeat.interval.ms", Some("6000"))],
            true
        )
        .await,
        ok()
    );
    let del = [("consumer.session.timeout.ms", DELETE, None)];
    assert_eq!(alter_incremental(&mut c, "g0", &del, false).await, ok());
    assert_eq!(
        value_of(&mut c, "g1", "consumer.session.timeout.ms").await,
        ("45000".into(), DEFAULT_CONFIG)
    );
    assert!(listed_groups(&mut c).await.is_empty());

    // SET, described with the group's value (printed back parsed).
    let set = [
        ("consumer.session.timeout.ms", SET, Some(" 50000 ")),
        ("share.isolation.level", SET, Some("read_committed")),
    ];
    assert_eq!(alter_incremental(&mut c, "g1", &set, false).await, ok());
    let (_, _, configs) =
        describe_full(&mut c, "g1", Some(&["consumer.session.timeout.ms"]), 4).await;
    assert_eq!(
        configs[0].3,
        vec![(
            "consumer.session.timeout.ms".to_string(),
            "50000".to_string(),
            GROUP_CONFIG
        )]
    );
    assert_eq!(configs[0].2, GROUP_CONFIG);
    assert_eq!(
        value_of(&mut c, "g1", "share.isolation.level").await,
        ("read_committed".into(), GROUP_CONFIG)
    );
    // The whole new config is checked: heartbeat 15000 < session 50000 is fine.
    assert_eq!(
        alter_incremental(
            &mut c,
            "g1",
            &[("consumer.heartbeat.interval.ms", SET, Some("15000"))],
            false
        )
        .await,
        ok()
    );
    // Legacy AlterConfigs replaces every config of g2 (an unknown group).
    assert_eq!(
        alter_legacy(
            &mut c,
            "g2",
            &[("consumer.heartbeat.interval.ms", Some("6000"))],
            false
        )
        .await,
        ok()
    );
    assert_eq!(
        value_of(&mut c, "g2", "consumer.heartbeat.interval.ms").await,
        ("6000".into(), GROUP_CONFIG)
    );
    assert_eq!(listed_groups(&mut c).await, vec!["g1", "g2"]);

    // DELETE; g2 emptied by a legacy replacement stays listed until restart (as in Kafka).
    let del = [
        ("consumer.session.timeout.ms", DELETE, None),
        ("share.isolation.level", DELETE, Some("")),
    ];
    assert_eq!(alter_incremental(&mut c, "g1", &del, false).await, ok());
    assert_eq!(
        value_of(&mut c, "g1", "consumer.session.timeout.ms").await,
        ("45000".into(), DEFAULT_CONFIG)
    );
    assert_eq!(alter_legacy(&mut c, "g2", &[], false).await, ok());
    assert_eq!(
        value_of(&mut c, "g2", "consumer.heartbeat.interval.ms").await,
        ("5000".into(), DEFAULT_CONFIG)
    );
    assert_eq!(listed_groups(&mut c).await, vec!["g1", "g2"]);

    // After a restart: g1's remaining config is back; g2 has none and is no longer listed.
    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.client().await;
    assert_eq!(listed_groups(&mut c).await, vec!["g1"]);
    let d = describe(&mut c, "g1").await;
    let dynamic: Vec<_> = d.iter().filter(|(.., src)| *src == GROUP_CONFIG).collect();
    assert_eq!(
        dynamic,
        vec![&(
            "consumer.heartbeat.interval.ms".to_string(),
            "15000".to_string(),
            GROUP_CONFIG
        )]
    );
    b.stop().await;
}

#[tokio::test]
async fn broker_group_keys_bound_group_configs() {
    let b = TestBroker::start(&[
        ("group.consumer.min.session.timeout.ms", "10000"),
        ("group.consumer.max.heartbeat.interval.ms", "60000"),
    ])
    .await;
    let mut c = b.client().await;
    assert_eq!(
        alter_incremental(
            &mut c,
            "g",
            &[("consumer.session.timeout.ms", SET, Some("10000"))],
            false
        )
        .await,
        ok()
    );
    assert_eq!(
        alter_incremental(
            &mut c,
            "g",
            &[("consumer.heartbeat.interval.ms", SET, Some("10000"))],
            false
        )
        .await,
        invalid_config(
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        )
    );
    b.stop().await;
    let bad = gregor::Config::from_map(
        [(
            "group.consumer.session.timeout.ms".to_string(),
            "70000".to_string(),
        )]
        .into(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("group.consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"),
        "{bad}"
    );
}
