"""The request kinds. Each kind is one module: its intent (a frozen value that `intents.interpret` makes without
I/O), its executor, its typed report, its renderer to an `Answer` and its `validate` description. table.py is
the table of them (`Intent`); base.py the protocol each satisfies (`Kind`) and the one dispatch (`kind_of`).
"""
