"""AVA preparation steps, each runnable as ``python -m data_prep.<step>`` and as ``ava-detect prep <step>``."""
