"""Chinese/English text, defined once for every layer: which characters are Han or CJK and which
language a text is in (``language``), how bytes of unknown encoding become text (``encoding``), what a
sentence is (``sentences``), which words two texts share (``terms``) and what a number is
(``numbers``). Pure functions over strings, no models and no I/O: the verifier, both engines, the
chunker and the search index all agree because they all import from here.
"""
