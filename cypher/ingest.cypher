// Batched writes (UNWIND over $rows). Every write is a MERGE on a
// deterministic uuid, so replaying a batch changes nothing. Entity and fact
// rows may carry their vector (r.embedding: a float list, or on FalkorDB the
// packed string the store makes of it), set when the element is created (an
// existing one keeps its vector: copying it on every alias row cost FalkorDB
// more than the vectors themselves); episode vectors go through the dialect's
// episode_embeddings_set (a vecf32 on FalkorDB, for its index).

// name: entities_upsert
UNWIND $rows AS r
MERGE (n:Entity {uuid: r.uuid})
ON CREATE SET n.group_id = r.group_id, n.name = r.name, n.name_key = r.name_key,
              n.type = r.type, n.aliases = r.aliases, n.summary = '', n.embedding = r.embedding
ON MATCH SET n.aliases = n.aliases + [a IN r.aliases WHERE NOT a IN n.aliases],
             n.type = CASE WHEN n.type = '' THEN r.type ELSE n.type END

// name: episodes_upsert
UNWIND $rows AS r
MATCH (s:Source {uuid: r.source_uuid})
MERGE (e:Episode {uuid: r.uuid})
SET e.group_id = r.group_id, e.source = r.source, e.source_id = r.source_id,
    e.content = r.content, e.content_hash = r.content_hash, e.position = r.position,
    e.title = r.title, e.speaker = r.speaker, e.occurred_at = r.occurred_at,
    e.ingested_at = r.ingested_at, e.turn_id = r.turn_id, e.search_text = r.search_text
MERGE (s)-[:HAS_EPISODE]->(e)

// name: next_upsert
UNWIND $rows AS r
MATCH (a:Episode {uuid: r.from}), (b:Episode {uuid: r.to})
MERGE (a)-[:NEXT]->(b)

// name: mentions_upsert
UNWIND $rows AS r
MATCH (e:Episode {uuid: r.episode}), (n:Entity {uuid: r.entity})
MERGE (e)-[m:MENTIONS]->(n)
SET m.count = r.count, m.role = r.role

// name: facts_upsert
UNWIND $rows AS r
MATCH (a:Entity {uuid: r.subject}), (b:Entity {uuid: r.object})
MERGE (a)-[f:FACT {uuid: r.uuid}]->(b)
ON CREATE SET f.group_id = r.group_id, f.predicate = r.predicate, f.text = r.text,
              f.valid_at = r.valid_at, f.invalid_at = r.invalid_at,
              f.created_at = r.created_at, f.expired_at = r.expired_at,
              f.episodes = r.episodes, f.embedding = r.embedding
ON MATCH SET f.episodes = f.episodes + [x IN r.episodes WHERE NOT x IN f.episodes],
             f.valid_at = CASE WHEN r.valid_at IS NOT NULL AND (f.valid_at IS NULL OR r.valid_at < f.valid_at)
                               THEN r.valid_at ELSE f.valid_at END

// name: synonyms_upsert
UNWIND $rows AS r
MATCH (a:Entity {uuid: r.a}), (b:Entity {uuid: r.b})
MERGE (a)-[s:SYNONYM]->(b)
SET s.score = r.score

// name: revision_bump
// A new group's first revision is $first (graphmem passes the time in ms): a group
// dropped and made again never repeats a revision, so no cached projection of the
// old group can pass for the new one.
MERGE (m:GraphMeta {group_id: $group_id})
ON CREATE SET m.revision = $first - 1
SET m.revision = coalesce(m.revision, $first - 1) + 1
RETURN m.revision AS revision

// name: revision_get
MATCH (m:GraphMeta {group_id: $group_id})
RETURN m.revision AS revision

// -- the whole-group sweep, only when something may need it --------------------
// Checking every entity for orphans and every fact for support costs the size of
// the group, so a run's start sweep does it only when GraphMeta.unswept says
// something may have left them: anything that removes episodes or edges (clearing
// or forgetting a source or an episode, a user's write query) and every ingestion
// run that claims sources raise it first; a run that ends cleanly takes its own
// raise back; a sweep that finds no other live writer sets it to 0. A crash at any
// point therefore leaves it raised. A group without the property (written before
// it existed) counts as raised.

// name: sweep_mark
// (a GraphMeta made here starts where revision_bump would start it)
MERGE (m:GraphMeta {group_id: $group_id})
ON CREATE SET m.unswept = 0, m.revision = $first - 1
SET m.unswept = coalesce(m.unswept, 1) + 1
RETURN m.unswept AS unswept

// name: sweep_unswept
MATCH (m:GraphMeta {group_id: $group_id})
RETURN coalesce(m.unswept, 1) AS unswept

// name: sweep_settle
// Take the mark from $seen to $to, unless it changed since $seen was read or another
// live writer has a source in 'writing' (its orphans may not have been removed).
OPTIONAL MATCH (w:Source {group_id: $group_id, state: 'writing'})
WHERE coalesce(w.owner, '') <> $owner AND NOT coalesce(w.owner, '') IN $dead
WITH count(w) AS busy
MATCH (m:GraphMeta {group_id: $group_id})
WHERE busy = 0 AND coalesce(m.unswept, 1) = $seen
SET m.unswept = $to
RETURN m.unswept AS unswept

// -- the entity index, read in pages of node ids -----------------------------------
// Each page costs its own size (paging with ORDER BY ... SKIP sorted every entity per
// page: quadratic in the group). graphmem/ingest/pipeline.py orders the rows by uuid.

// name: entity_index_span
MATCH (n:Entity {group_id: $group_id})
RETURN max(id(n)) AS last

// name: entity_index_ids
MATCH (n:Entity)
WHERE id(n) >= $lo AND id(n) < $hi AND n.group_id = $group_id
RETURN n.uuid AS uuid, n.name_key AS name_key, n.embedding AS embedding
