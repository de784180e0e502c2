// Bi-temporal facts (graphmem/resolve/temporal.py): the timeline of one
// subject's single-valued relation is read, recomputed in Python, and its
// validity written back. Nothing here deletes a fact.

// name: facts_by_subject_predicates
UNWIND $rows AS r
MATCH (a:Entity {uuid: r.subject, group_id: $group_id})-[f:FACT]->(b:Entity)
WHERE f.predicate IN r.predicates
RETURN f.uuid AS uuid, a.uuid AS subject, b.uuid AS object, f.predicate AS predicate,
       f.valid_at AS valid_at, f.invalid_at AS invalid_at, f.created_at AS created_at,
       f.expired_at AS expired_at

// name: facts_set_validity
UNWIND $rows AS r
MATCH (:Entity {uuid: r.subject})-[f:FACT {uuid: r.uuid}]->()
SET f.valid_at = r.valid_at, f.invalid_at = r.invalid_at, f.expired_at = r.expired_at

// name: facts_keys_of_episodes
// (subject, predicate) of the facts some of $episodes support: their
// timelines are recomputed after those episodes are forgotten.
MATCH (a:Entity {group_id: $group_id})-[f:FACT]->(:Entity)
WHERE any(x IN f.episodes WHERE x IN $episodes)
RETURN DISTINCT a.uuid AS subject, f.predicate AS predicate

// name: facts_keys_of_source
MATCH (s:Source {uuid: $uuid, group_id: $group_id})-[:HAS_EPISODE]->(e:Episode)
WITH collect(e.uuid) AS gone
MATCH (a:Entity {group_id: $group_id})-[f:FACT]->(:Entity)
WHERE any(x IN f.episodes WHERE x IN gone)
RETURN DISTINCT a.uuid AS subject, f.predicate AS predicate

// -- an entity's facts (graphmem facts ENTITY) --------------------------------

// name: entity_find
// By uuid, normalized name, or any alias; the most mentioned match first.
MATCH (n:Entity {group_id: $group_id})
WHERE n.uuid = $name OR n.name_key = $key OR $name IN n.aliases
OPTIONAL MATCH (n)<-[m:MENTIONS]-()
RETURN n.uuid AS uuid, n.name AS name, n.type AS type, count(m) AS mentions
ORDER BY mentions DESC, name

// name: entity_facts
MATCH (a:Entity {uuid: $uuid, group_id: $group_id})-[f:FACT]->(b:Entity)
RETURN f.uuid AS uuid, a.name AS subject, f.predicate AS predicate, b.name AS object, f.text AS text,
       f.valid_at AS valid_at, f.invalid_at AS invalid_at, f.created_at AS created_at,
       f.expired_at AS expired_at, f.episodes AS episodes
UNION ALL
MATCH (a:Entity)-[f:FACT]->(b:Entity {uuid: $uuid, group_id: $group_id})
RETURN f.uuid AS uuid, a.name AS subject, f.predicate AS predicate, b.name AS object, f.text AS text,
       f.valid_at AS valid_at, f.invalid_at AS invalid_at, f.created_at AS created_at,
       f.expired_at AS expired_at, f.episodes AS episodes

// -- forgetting -----------------------------------------------------------------

// name: source_find
MATCH (s:Source {group_id: $group_id})
WHERE s.name = $key OR s.uuid = $key
RETURN s.uuid AS uuid, s.name AS name, s.kind AS kind

// name: episode_neighbours
// The turn/passage before and after one episode, to relink NEXT around it.
MATCH (e:Episode {uuid: $uuid, group_id: $group_id})
OPTIONAL MATCH (p:Episode)-[:NEXT]->(e)
OPTIONAL MATCH (e)-[:NEXT]->(n:Episode)
RETURN e.uuid AS uuid, p.uuid AS previous, n.uuid AS next

// name: facts_unsupport_episodes
MATCH (:Entity {group_id: $group_id})-[f:FACT]->(:Entity)
WHERE any(x IN f.episodes WHERE x IN $episodes)
SET f.episodes = [x IN f.episodes WHERE NOT x IN $episodes]

// name: episodes_delete
UNWIND $episodes AS id
MATCH (e:Episode {uuid: id, group_id: $group_id})
DETACH DELETE e
RETURN count(*) AS deleted

// Bi-temporal facts. A contradicted fact is never deleted: it gets
// invalid_at (world time: when it stopped being true) and expired_at (system
// time: when graphmem learned so). Both are UTC epoch milliseconds.
