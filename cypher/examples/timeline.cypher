// The facts about an entity as a timeline (oldest first), including facts
// that were later contradicted: `valid_until` says when they stopped being
// true. Times are UTC epoch milliseconds, as stored.
// Params: $name (entity name or alias, any case), $group_id.
MATCH (e:Entity {group_id: $group_id})
WHERE toLower(e.name) = toLower($name) OR toLower($name) IN [a IN e.aliases | toLower(a)]
MATCH (s:Entity {group_id: $group_id})-[f:FACT]->(o:Entity)
WHERE s = e OR o = e
RETURN coalesce(f.valid_at, f.created_at) AS since, f.invalid_at AS valid_until,
       s.name AS subject, f.predicate AS predicate, o.name AS object, f.text AS text,
       CASE WHEN f.invalid_at IS NULL THEN 'current' ELSE 'past' END AS status
ORDER BY since, subject, predicate
