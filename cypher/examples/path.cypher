// A shortest connection between two entities, up to 4 hops, over facts,
// synonyms and the passages that mention both ends of a hop. Portable
// Cypher (runs on FalkorDB and Neo4j); on a large Neo4j graph
// shortestPath() is faster.
// Params: $from, $to (entity names or aliases, any case), $group_id.
MATCH (a:Entity {group_id: $group_id}), (b:Entity {group_id: $group_id})
WHERE (toLower(a.name) = toLower($from) OR toLower($from) IN [x IN a.aliases | toLower(x)])
  AND (toLower(b.name) = toLower($to) OR toLower($to) IN [x IN b.aliases | toLower(x)])
MATCH p = (a)-[:FACT|SYNONYM|MENTIONS*1..4]-(b)
RETURN length(p) AS hops,
       [n IN nodes(p) | coalesce(n.name, n.title, n.uuid)] AS through,
       [r IN relationships(p) | coalesce(r.predicate, type(r))] AS via
ORDER BY hops
LIMIT 1
