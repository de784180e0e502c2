// The facts about an entity as a timeline (oldest first), including facts
// that were later contradicted: `valid_until` says when they stopped being
// true; `since` is empty when the start is unknown (an undated fact: it holds
// at any date), `recorded_at` is when graphmem learned it. Times are UTC epoch
// milliseconds, as stored (`graphmem cypher` shows them as ISO dates in its
// table; --json keeps the milliseconds).
// Params: $name (entity name or alias, any case), $group_id.
MATCH (e:Entity {group_id: $group_id})
WHERE toLower(e.name) = toLower($name) OR toLower($name) IN [a IN e.aliases | toLower(a)]
MATCH (s:Entity {group_id: $group_id})-[f:FACT]->(o:Entity)
WHERE s = e OR o = e
RETURN f.valid_at AS since, f.invalid_at AS valid_until,
       s.name AS subject, f.predicate AS predicate, o.name AS object, f.text AS text,
       CASE WHEN f.invalid_at IS NULL THEN 'current' ELSE 'past' END AS status,
       f.created_at AS recorded_at
ORDER BY coalesce(since, recorded_at), subject, predicate
