"""keepalived.conf -> typed model.

Theory of operation: ``source`` reads files into logical lines that keep their provenance
(include globbing, ``@conditional`` lines, ``$NAME`` definitions, ``~SEQ``/``~LST``);
``grammar`` (the only pyparsing importer) turns those lines into a generic :class:`Block` tree;
``lower`` walks the tree and builds the frozen dataclasses of ``model`` while collecting
:class:`Diagnostic` values. Nothing here touches the network or imports pyroute2/scapy/click.
"""
