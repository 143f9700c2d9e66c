use super::*;
use crate::envelope::event_id;

fn ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| event_id("line", "acme", &format!("01HZ{i:022}")))
        .collect()
}

fn guard(key: &str) -> ReplayGuard {
    ReplayGuard {
        key: key.to_owned(),
        body_digest: "d".repeat(64),
        expires_at_ms: 9,
    }
}

#[test]
fn an_id_always_maps_to_the_same_shard() {
    for id in ids(50) {
        assert_eq!(shard_of(&id), shard_of(&id.clone()));
        assert!(shard_of(&id) < SHARDS);
    }
    // Pinned (computed with Python's hashlib): a change here would move every stored claim to another object.
    assert_eq!(shard_of("evt_00000000000000000000000000000000"), 4);
}

/// 32,000 event ids over 16 shards: each shard within 10% of the 2,000 it would get if perfectly even,
/// and a chi-square statistic far below the 0.1% critical value for 15 degrees of freedom (37.7).
#[test]
fn shards_spread_evenly() {
    let mut counts = [0u32; SHARDS as usize];
    for id in ids(32_000) {
        counts[usize::from(shard_of(&id))] += 1;
    }
    let expected = 32_000.0 / f64::from(SHARDS);
    let chi_square: f64 = counts
        .iter()
        .map(|&c| (f64::from(c) - expected).powi(2) / expected)
        .sum();
    assert!(chi_square < 37.7, "{counts:?}: χ² = {chi_square}");
    for count in counts {
        assert!(
            (f64::from(count) - expected).abs() < expected * 0.1,
            "{counts:?}"
        );
    }
}

#[test]
fn a_plan_carries_every_id_once_in_its_shard_and_the_guard_in_the_guards_shard() {
    let ids = ids(40);
    let guard = guard("wechat-query-digest");
    let plan = ClaimPlan::new(&ids, Some(&guard), 7);
    let mut seen: Vec<usize> = plan.calls.iter().flat_map(|c| c.indices.clone()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    let mut guards = 0;
    for call in &plan.calls {
        let DedupCall::Claim {
            ids: carried,
            guard: g,
            now_ms,
        } = &call.call
        else {
            panic!("a claim plan holds claims");
        };
        assert_eq!(*now_ms, 7);
        assert_eq!(carried.len(), call.indices.len());
        for (id, &index) in carried.iter().zip(&call.indices) {
            assert_eq!(id, &ids[index]);
            assert_eq!(shard_of(id), call.shard);
        }
        if let Some(g) = g {
            guards += 1;
            assert_eq!(call.shard, shard_of(&g.key));
        }
    }
    assert_eq!(guards, 1);
    let shards: std::collections::HashSet<u16> = plan.calls.iter().map(|c| c.shard).collect();
    assert_eq!(shards.len(), plan.calls.len(), "one call per shard");
}

#[test]
fn a_guard_without_ids_in_its_shard_gets_a_call_of_its_own() {
    let plan = ClaimPlan::new(&[], Some(&guard("k")), 1);
    assert_eq!(plan.calls.len(), 1);
    assert_eq!(plan.calls[0].shard, shard_of("k"));
    assert!(plan.calls[0].indices.is_empty());
}

fn claimed(answers: &[ClaimAnswer]) -> Result<DedupReply, ()> {
    Ok(DedupReply::Claimed {
        answers: answers.to_vec(),
    })
}

#[test]
fn answers_come_back_in_the_order_of_the_ids() {
    let ids = ids(20);
    let plan = ClaimPlan::new(&ids, None, 1);
    // Every id whose index is even is a duplicate.
    let replies = plan
        .calls
        .iter()
        .map(|call| {
            let answers: Vec<ClaimAnswer> = call
                .indices
                .iter()
                .map(|i| {
                    if i % 2 == 0 {
                        ClaimAnswer::Duplicate
                    } else {
                        ClaimAnswer::Fresh
                    }
                })
                .collect();
            claimed(&answers)
        })
        .collect();
    let answers = plan.merge(replies).unwrap();
    for (i, answer) in answers.iter().enumerate() {
        let expected = if i % 2 == 0 {
            ClaimAnswer::Duplicate
        } else {
            ClaimAnswer::Fresh
        };
        assert_eq!(*answer, expected, "{i}");
    }
}

#[test]
fn a_failed_or_refused_shard_releases_what_the_others_claimed() {
    let ids = ids(20);
    let plan = ClaimPlan::new(&ids, Some(&guard("g")), 1);
    assert!(plan.calls.len() > 2);
    let guard_call = plan
        .calls
        .iter()
        .position(|c| matches!(&c.call, DedupCall::Claim { guard: Some(_), .. }))
        .unwrap();
    let fresh_elsewhere: Vec<usize> = {
        let mut v: Vec<usize> = plan
            .calls
            .iter()
            .enumerate()
            .filter(|(n, _)| *n != guard_call && *n != 0)
            .flat_map(|(_, c)| c.indices.clone())
            .collect();
        v.sort_unstable();
        v
    };
    let replies: Vec<Result<DedupReply, ()>> = plan
        .calls
        .iter()
        .enumerate()
        .map(|(n, call)| {
            if n == guard_call {
                Ok(DedupReply::ReplayRefused)
            } else if n == 0 {
                Err(())
            } else {
                claimed(&vec![ClaimAnswer::Fresh; call.indices.len()])
            }
        })
        .collect();
    let failure = plan.merge(replies).unwrap_err();
    let mut release = failure.release.clone();
    release.sort_unstable();
    if guard_call == 0 {
        // The same call cannot both fail and refuse; the refusal wins.
        assert_eq!(failure.rejection, Rejection::ReplayedSignature);
    } else {
        assert_eq!(
            failure.rejection,
            Rejection::ReplayedSignature,
            "the refusal outranks a failed call"
        );
        assert_eq!(release, fresh_elsewhere);
    }

    // A reply of the wrong length is a failure, never a guess.
    let short = plan
        .calls
        .iter()
        .map(|_| claimed(&[ClaimAnswer::Fresh]))
        .collect();
    assert!(plan.merge(short).is_err());
    assert_eq!(
        plan.merge::<()>(vec![]).unwrap_err().rejection,
        Rejection::EnqueueFailed
    );
}

#[test]
fn commits_and_releases_go_to_each_ids_shard() {
    let ids = ids(30);
    let groups = group_ids(&ids);
    let total: usize = groups.iter().map(|(_, g)| g.len()).sum();
    assert_eq!(total, 30);
    for (shard, group) in groups {
        assert!(group.iter().all(|id| shard_of(id) == shard));
    }
}

#[test]
fn a_spill_keeps_each_unsent_message_with_its_events_shard_and_commits_every_fresh_id() {
    let ids = ids(12);
    // The first 5 messages were sent, the last 7 were refused.
    let unsent: Vec<String> = ids[5..]
        .iter()
        .map(|id| format!("message of {id}"))
        .collect();
    let calls = spill_calls(&ids, unsent, 3, "/line/acme");
    let mut committed = 0;
    let mut kept = 0;
    for (shard, call) in calls {
        let DedupCall::Spill {
            ids: carried,
            messages,
            now_ms,
            source,
        } = call
        else {
            panic!("spill calls");
        };
        assert_eq!((now_ms, source.as_str()), (3, "/line/acme"));
        assert!(carried.iter().all(|id| shard_of(id) == shard));
        for message in &messages {
            let id = message.trim_start_matches("message of ");
            assert_eq!(
                shard_of(id),
                shard,
                "a message stays with its event's shard"
            );
            assert!(ids[5..].iter().any(|unsent| unsent == id));
        }
        committed += carried.len();
        kept += messages.len();
    }
    assert_eq!((committed, kept), (12, 7));
}
