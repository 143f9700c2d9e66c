use super::*;
use crate::envelope::event_id;

fn ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| event_id("line", "acme", &format!("01HZ{i:022}")))
        .collect()
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

fn events(ids: &[String]) -> Vec<AcceptEvent> {
    ids.iter()
        .map(|id| AcceptEvent {
            id: id.clone(),
            message: format!("message of {id}"),
        })
        .collect()
}

#[test]
fn a_plan_carries_every_event_once_in_its_shard() {
    let ids = ids(40);
    let plan = AcceptPlan::new(events(&ids), 7, Some(3), "/line/acme", None);
    let mut seen: Vec<usize> = plan.calls.iter().flat_map(|c| c.indices.clone()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    for call in &plan.calls {
        let DedupCall::Accept {
            events: carried,
            now_ms,
            delay_s,
            source,
            hold,
            edge_sends,
        } = &call.call
        else {
            panic!("an accept plan holds accept calls");
        };
        assert_eq!(
            (*now_ms, *delay_s, source.as_str()),
            (7, Some(3), "/line/acme")
        );
        assert_eq!(*hold, None);
        assert!(!edge_sends);
        assert_eq!(carried.len(), call.indices.len());
        for (event, &index) in carried.iter().zip(&call.indices) {
            assert_eq!(event.id, ids[index]);
            assert_eq!(event.message, format!("message of {}", ids[index]));
            assert_eq!(shard_of(&event.id), call.shard);
        }
    }
    let shards: std::collections::HashSet<u16> = plan.calls.iter().map(|c| c.shard).collect();
    assert_eq!(shards.len(), plan.calls.len(), "one call per shard");
}

fn accepted(answers: &[ClaimAnswer], spilled: bool) -> Result<DedupReply, ()> {
    Ok(DedupReply::Accepted {
        answers: answers.to_vec(),
        spilled,
        held: false,
        kept: None,
    })
}

#[test]
fn the_hold_goes_to_the_shard_of_its_event_and_comes_back_merged() {
    let ids = ids(6);
    let hold = crate::dedup::Hold::for_reply(&ids[4], 3_000, 1);
    let plan = AcceptPlan::new(events(&ids), 1, None, "/line/acme", Some(hold.clone()));
    let holding: Vec<u16> = plan
        .calls
        .iter()
        .filter(|call| matches!(&call.call, DedupCall::Accept { hold: Some(h), .. } if *h == hold))
        .map(|call| call.shard)
        .collect();
    assert_eq!(holding, vec![shard_of(&ids[4])]);
    let replies = plan
        .calls
        .iter()
        .map(|call| {
            Ok::<_, ()>(DedupReply::Accepted {
                answers: vec![ClaimAnswer::Fresh; call.indices.len()],
                spilled: false,
                held: call.shard == holding[0],
                kept: None,
            })
        })
        .collect();
    let merged = plan.merge(replies).unwrap();
    assert_eq!(merged.held_by, Some(holding[0]));
    assert_eq!(merged.kept, None);
}

#[test]
fn answers_come_back_in_the_order_of_the_events() {
    let ids = ids(20);
    let plan = AcceptPlan::new(events(&ids), 1, None, "/line/acme", None);
    // Every event whose index is even is a duplicate; the first shard spilled.
    let replies = plan
        .calls
        .iter()
        .enumerate()
        .map(|(n, call)| {
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
            accepted(&answers, n == 0)
        })
        .collect();
    let merged = plan.merge(replies).unwrap();
    assert!(merged.spilled);
    for (i, answer) in merged.answers.iter().enumerate() {
        let expected = if i % 2 == 0 {
            ClaimAnswer::Duplicate
        } else {
            ClaimAnswer::Fresh
        };
        assert_eq!(*answer, expected, "{i}");
    }
}

#[test]
fn a_failed_or_busy_shard_refuses_the_request() {
    let ids = ids(20);
    let plan = AcceptPlan::new(events(&ids), 1, None, "/line/acme", None);
    assert!(plan.calls.len() > 2);
    let fresh = |call: &ShardCall| accepted(&vec![ClaimAnswer::Fresh; call.indices.len()], false);
    let with = |odd: usize, reply: Result<DedupReply, ()>| -> Vec<Result<DedupReply, ()>> {
        plan.calls
            .iter()
            .enumerate()
            .map(|(n, call)| if n == odd { reply.clone() } else { fresh(call) })
            .collect()
    };
    assert_eq!(plan.merge(with(1, Err(()))), Err(Rejection::EnqueueFailed));
    assert_eq!(
        plan.merge(with(1, Ok(DedupReply::Busy))),
        Err(Rejection::ClaimInProgress)
    );
    assert_eq!(
        plan.merge(with(0, Ok(DedupReply::Done))),
        Err(Rejection::EnqueueFailed),
        "a reply that does not answer an accept"
    );
    assert!(plan.merge(with(usize::MAX, Err(()))).is_ok());

    // A reply of the wrong length is a failure, never a guess.
    let short = plan
        .calls
        .iter()
        .map(|_| accepted(&[ClaimAnswer::Fresh], false))
        .collect();
    assert_eq!(plan.merge(short), Err(Rejection::EnqueueFailed));
    assert_eq!(plan.merge::<()>(vec![]), Err(Rejection::EnqueueFailed));
}
