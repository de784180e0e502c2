// The most connected entities: how many facts touch each one and how many
// passages mention it.
// Params: $group_id.
MATCH (e:Entity {group_id: $group_id})
OPTIONAL MATCH (e)-[f:FACT]-()
WITH e, count(f) AS facts
OPTIONAL MATCH (e)<-[:MENTIONS]-(p:Episode)
RETURN e.name AS entity, e.type AS type, facts, count(p) AS passages
ORDER BY facts + passages DESC, entity
LIMIT 25
