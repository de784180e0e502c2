// Group metadata: the recipe a group was ingested with (graphmem/recipe.py), a JSON
// text on the group's GraphMeta node beside its revision. Export, import and migrate
// carry it with the node's other properties.

// name: group_meta
MATCH (m:GraphMeta {group_id: $group_id})
RETURN m.revision AS revision, m.recipe AS recipe

// name: recipe_set
// A new group's GraphMeta starts at revision $first - 1, as revision_bump makes it.
MERGE (m:GraphMeta {group_id: $group_id})
ON CREATE SET m.revision = $first - 1
SET m.recipe = $recipe
RETURN m.revision AS revision
