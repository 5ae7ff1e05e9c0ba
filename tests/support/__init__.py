"""What the tests and the benches share: a real gateway run in-process and its store read
back (``gateway``), test speech (``voices``), an LLM endpoint that misbehaves on purpose
(``fault_llm``) and a throwaway PostgreSQL (``postgres``). Benches import only from here,
never from a test module."""
