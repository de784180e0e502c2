// The neighbourhood of an entity within 2 hops over facts and synonyms:
// who or what it is related to, and through which predicates (those of a
// shortest way there).
// Params: $name (entity name or alias, any case), $group_id.
MATCH (e:Entity {group_id: $group_id})
WHERE toLower(e.name) = toLower($name) OR toLower($name) IN [a IN e.aliases | toLower(a)]
MATCH p = (e)-[:FACT|SYNONYM*1..2]-(n:Entity)
WHERE n <> e
WITH n, length(p) AS hops, [r IN relationships(p) | coalesce(r.predicate, 'synonym')] AS via
ORDER BY hops
WITH n, collect(hops)[0] AS hops, collect(via)[0] AS via
RETURN n.name AS entity, n.type AS type, hops, via
ORDER BY hops, entity
LIMIT 100
