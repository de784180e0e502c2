"""``graphmem mcp``: graphmem's memory for agents over the Model Context Protocol.

Tools: ``add_memory``, ``add_document``, ``search_memory``, ``get_facts``, ``get_entity``,
``forget``, ``list_sources``. Resources: ``graphmem://stats`` and
``graphmem://episodes/recent``. See :mod:`graphmem.mcp.server`; everything runs on the
public :class:`graphmem.Memory` facade (:mod:`graphmem.mcp.service`).
"""
