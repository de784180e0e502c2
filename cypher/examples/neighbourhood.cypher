// The neighbourhood of an entity within 2 hops over facts and synonyms:
// who or what it is related to, and through which predicates.
// Params: $name (entity name or alias, any case), $group_id.
MATCH (e:Entity {group_id: $group_id})
WHERE toLower(e.name) = toLower($name) OR toLower($name) IN [a IN e.aliases | toLower(a)]
MATCH p = (e)-[:FACT|SYNONYM*1..2]-(n:Entity)
WHERE n <> e
RETURN n.name AS entity, n.type AS type, min(length(p)) AS hops,
       collect(DISTINCT [r IN relationships(p) | coalesce(r.predicate, 'synonym')])[0] AS via
ORDER BY hops, entity
LIMIT 100
