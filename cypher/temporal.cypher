// Bi-temporal facts. A contradicted fact is never deleted: it gets
// invalid_at (world time: when it stopped being true) and expired_at (system
// time: when graphmem learned so). Both are UTC epoch milliseconds.

// name: fact_invalidate
// Invalidate one still-valid fact; a second call changes nothing (returns 0).
MATCH (:Entity {group_id: $group_id})-[f:FACT {uuid: $uuid}]->(:Entity)
WHERE f.invalid_at IS NULL
SET f.invalid_at = $invalid_at, f.expired_at = $expired_at
RETURN count(f) AS invalidated

// name: facts_valid_at
// The facts that were true at $at (valid_at <= $at < invalid_at; open ends are unbounded).
MATCH (a:Entity {group_id: $group_id})-[f:FACT]->(b:Entity)
WHERE (f.valid_at IS NULL OR f.valid_at <= $at) AND (f.invalid_at IS NULL OR $at < f.invalid_at)
RETURN f.uuid AS uuid, a.name AS subject, f.predicate AS predicate, b.name AS object,
       f.valid_at AS valid_at, f.invalid_at AS invalid_at
ORDER BY uuid
