//! The group state machine without I/O: every transition driven by events at injected times.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::state::{Effect, Group, State};
use super::{GroupConfig, JoinRequest, JoinResult, Protocol, SyncRequest, SyncResult};

fn cfg(delay: i64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: delay,
        max_size: 3,
        ..GroupConfig::default()
    }
}

fn join_req(member: &str, instance: Option<&str>, meta: &'static [u8]) -> JoinRequest {
    JoinRequest {
        member_id: member.into(),
        instance_id: instance.map(Into::into),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: Bytes::from_static(meta),
        }],
        require_known_member_id: true,
    }
}

fn sync_req(member: &str, generation: i32, assignments: &[(&str, &'static [u8])]) -> SyncRequest {
    SyncRequest {
        member_id: member.into(),
        instance_id: None,
        generation,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from_static(a)))
            .collect(),
    }
}

fn joins(effects: &[Effect]) -> Vec<(u64, JoinResult)> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Join(id, r) = e {
                Some((*id, r.clone()))
            } else {
                None
            }
        })
        .collect()
}

fn syncs(effects: &[Effect]) -> Vec<(u64, SyncResult)> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Sync(id, r) = e {
                Some((*id, r.clone()))
            } else {
                None
            }
        })
        .collect()
}

/// Joins a new dynamic member through MEMBER_ID_REQUIRED; returns its id and the second join's effects.
fn join_new(
    g: &mut Group,
    name: &str,
    req_id: u64,
    now: i64,
    c: &GroupConfig,
) -> (String, Vec<Effect>) {
    let first = g.join(
        join_req("", None, b"m"),
        req_id,
        format!("{name}-id"),
        now,
        c,
    );
    let r = &joins(&first)[0].1;
    assert_eq!(r.error, Some(ResponseError::MemberIdRequired));
    let id = r.member_id.clone();
    let effects = g.join(
        join_req(&id, None, b"m"),
        req_id + 1,
        "unused".into(),
        now,
        c,
    );
    (id, effects)
}

/// A group with one member `a` (leader) in Stable at generation 1.
fn stable_with_a(c: &GroupConfig) -> (Group, String) {
    let mut g = Group::new("g", 0);
    let (a, effects) = join_new(&mut g, "a", 1, 0, c);
    let j = joins(&effects);
    assert_eq!(j.len(), 1);
    assert_eq!((j[0].1.generation, j[0].1.leader.as_str()), (1, a.as_str()));
    assert_eq!(j[0].1.members.len(), 1);
    let effects = g.sync(sync_req(&a, 1, &[(&a, b"A1")]), 3, 0);
    assert_eq!(effects[0], Effect::Persist);
    assert_eq!(syncs(&effects)[0].1.assignment, Bytes::from_static(b"A1"));
    assert_eq!(g.state, State::Stable);
    (g, a)
}

#[test]
fn second_member_triggers_a_rebalance_that_completes_when_all_rejoin() {
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    let (b, effects) = join_new(&mut g, "b", 10, 100, &c);
    assert!(joins(&effects).is_empty(), "b waits for a to rejoin");
    assert_eq!(g.state, State::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&a, None, 1, 200),
        Err(ResponseError::RebalanceInProgress)
    );
    let effects = g.join(join_req(&a, None, b"m"), 20, "unused".into(), 300, &c);
    let j = joins(&effects);
    assert_eq!(j.len(), 2);
    let leader = j.iter().find(|(id, _)| *id == 20).unwrap();
    assert_eq!((leader.1.generation, leader.1.members.len()), (2, 2));
    let follower = j.iter().find(|(id, _)| *id == 11).unwrap();
    assert!(follower.1.members.is_empty());
    assert_eq!(follower.1.leader, a);
    // The follower's sync waits for the leader's.
    assert!(g.sync(sync_req(&b, 2, &[]), 30, 400).is_empty());
    let effects = g.sync(sync_req(&a, 2, &[(&a, b"A2"), (&b, b"B2")]), 31, 400);
    let s = syncs(&effects);
    assert_eq!(s.len(), 2);
    assert_eq!(
        s.iter().find(|(id, _)| *id == 30).unwrap().1.assignment,
        Bytes::from_static(b"B2")
    );
    assert_eq!(g.state, State::Stable);
    assert_eq!(
        g.heartbeat(&b, None, 1, 500),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(g.heartbeat(&b, None, 2, 500), Ok(()));
}

#[test]
fn session_timeout_removes_a_silent_member() {
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    assert!(g.tick(9_999, &c).is_empty());
    let effects = g.tick(10_000, &c);
    assert!(
        g.members.is_empty() || g.state == State::PreparingRebalance,
        "{effects:?}"
    );
    assert!(!g.members.contains_key(&a));
    // With nobody left the next join phase ends with an empty group.
    g.tick(10_001, &c);
    assert_eq!(g.state, State::Empty);
    assert_eq!(g.generation, 2);
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    let (b, _) = join_new(&mut g, "b", 10, 1_000, &c);
    g.heartbeat(&a, None, 1, 20_000).unwrap_err();
    let effects = g.tick(31_000, &c);
    let j = joins(&effects);
    assert_eq!(j.len(), 1);
    assert_eq!(
        (j[0].1.generation, j[0].1.leader.as_str()),
        (2, b.as_str()),
        "b becomes leader"
    );
    assert!(!g.members.contains_key(&a));
}

#[test]
fn static_member_rejoining_in_stable_keeps_the_generation_and_fences_the_old_id() {
    let c = cfg(0);
    let mut g = Group::new("g", 0);
    let effects = g.join(join_req("", Some("i1"), b"m"), 1, "s1".into(), 0, &c);
    assert_eq!(
        joins(&effects)[0].1.member_id,
        "s1",
        "static members skip MEMBER_ID_REQUIRED"
    );
    g.sync(sync_req("s1", 1, &[("s1", b"S")]), 2, 0);
    let effects = g.join(join_req("", Some("i1"), b"m"), 3, "s2".into(), 100, &c);
    let r = &joins(&effects)[0].1;
    assert_eq!(
        (r.member_id.as_str(), r.generation, r.error),
        ("s2", 1, None)
    );
    assert_eq!(
        r.leader, "s1",
        "the old leader id keeps the member from reassigning"
    );
    assert_eq!(g.state, State::Stable);
    assert_eq!(
        g.heartbeat("s1", Some("i1"), 1, 200),
        Err(ResponseError::FencedInstanceId)
    );
    let effects = g.sync(
        SyncRequest {
            instance_id: Some("i1".into()),
            ..sync_req("s2", 1, &[])
        },
        4,
        200,
    );
    assert_eq!(syncs(&effects)[0].1.assignment, Bytes::from_static(b"S"));
}

#[test]
fn join_validation_errors() {
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    let mut bad = join_req("", None, b"m");
    bad.session_timeout_ms = 10;
    assert_eq!(
        joins(&g.join(bad, 1, "x".into(), 0, &c))[0].1.error,
        Some(ResponseError::InvalidSessionTimeout)
    );
    let mut other = join_req("", None, b"m");
    other.protocol_type = "connect".into();
    assert_eq!(
        joins(&g.join(other, 2, "x".into(), 0, &c))[0].1.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        joins(&g.join(join_req("ghost", None, b"m"), 3, "x".into(), 0, &c))[0]
            .1
            .error,
        Some(ResponseError::UnknownMemberId)
    );
    join_new(&mut g, "b", 10, 0, &c);
    join_new(&mut g, "c", 20, 0, &c);
    g.join(join_req(&a, None, b"m"), 25, "unused".into(), 0, &c);
    assert_eq!(g.state, State::CompletingRebalance);
    let r = g.join(join_req("", None, b"m"), 30, "d".into(), 0, &c);
    assert_eq!(
        joins(&r)[0].1.error,
        Some(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn initial_rebalance_delay_holds_the_first_join_phase() {
    let c = cfg(3_000);
    let mut g = Group::new("g", 0);
    let (_, effects) = join_new(&mut g, "a", 1, 0, &c);
    assert!(joins(&effects).is_empty());
    assert!(joins(&g.tick(2_999, &c)).is_empty());
    // A second member during the delay extends it once more.
    join_new(&mut g, "b", 10, 1_000, &c);
    assert!(joins(&g.tick(3_000, &c)).is_empty());
    let j = joins(&g.tick(6_000, &c));
    assert_eq!(j.len(), 2);
    assert_eq!(g.state, State::CompletingRebalance);
}

#[test]
fn leaving_leader_hands_over_and_rebalances() {
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    let (b, _) = join_new(&mut g, "b", 10, 0, &c);
    g.join(join_req(&a, None, b"m"), 20, "unused".into(), 0, &c);
    g.sync(sync_req(&a, 2, &[]), 21, 0);
    assert_eq!(g.state, State::Stable);
    let (r, _) = g.leave(&a, None, 10, &c);
    assert_eq!(r, Ok(()));
    assert_eq!(g.leader.as_deref(), Some(b.as_str()));
    assert_eq!(g.state, State::PreparingRebalance);
    let effects = g.join(join_req(&b, None, b"m"), 30, "unused".into(), 20, &c);
    assert_eq!(joins(&effects)[0].1.generation, 3);
    assert_eq!(
        g.leave("ghost", None, 30, &c).0,
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn delete_only_when_empty() {
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    assert_eq!(g.delete(0), Err(ResponseError::NonEmptyGroup));
    assert_eq!(g.leave(&a, None, 0, &c).0, Ok(()));
    g.tick(1, &c);
    assert_eq!(g.state, State::Empty);
    assert_eq!(g.delete(2), Ok(()));
    assert_eq!(g.state, State::Dead);
}

#[test]
fn the_last_member_leaving_empties_the_group_before_the_answer() {
    // Kafka completes the join phase at once when nobody is left, so "stop the consumers, then
    // delete the group" works right after LeaveGroup returns.
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    let (r, effects) = g.leave(&a, None, 100, &c);
    assert_eq!(r, Ok(()));
    assert_eq!(g.state, State::Empty);
    assert_eq!(g.generation, 2);
    assert!(effects.contains(&Effect::Persist), "{effects:?}");
    assert_eq!(g.delete(100), Ok(()));
}

#[test]
fn the_last_member_leaving_during_a_rebalance_empties_the_group() {
    let c = cfg(0);
    let (mut g, a) = stable_with_a(&c);
    let (b, _) = join_new(&mut g, "b", 10, 100, &c);
    assert_eq!(g.state, State::PreparingRebalance);
    let (r, _) = g.leave(&b, None, 200, &c);
    assert_eq!(r, Ok(()));
    assert_eq!(g.state, State::PreparingRebalance, "a has not rejoined yet");
    let (r, _) = g.leave(&a, None, 300, &c);
    assert_eq!(r, Ok(()));
    assert_eq!(g.state, State::Empty);
}
