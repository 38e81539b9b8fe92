"""`modelapi predict`: a CSV of any size streamed in blocks, scored in this process or by a
server, and written in order (`stream`, `scorers`, and the numpy block path `columnar`)."""
