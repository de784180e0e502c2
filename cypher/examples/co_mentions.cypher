// The passages (episodes) that mention both of two entities, oldest first.
// Params: $a, $b (entity names or aliases, any case), $group_id.
MATCH (x:Entity {group_id: $group_id}), (y:Entity {group_id: $group_id})
WHERE (toLower(x.name) = toLower($a) OR toLower($a) IN [n IN x.aliases | toLower(n)])
  AND (toLower(y.name) = toLower($b) OR toLower($b) IN [n IN y.aliases | toLower(n)])
MATCH (x)<-[:MENTIONS]-(e:Episode)-[:MENTIONS]->(y)
RETURN e.title AS title, e.source_id AS source, e.occurred_at AS occurred_at, e.content AS passage
ORDER BY occurred_at, title
