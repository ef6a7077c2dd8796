"""Qt Linguist catalogues (.ts sources, compiled .qm loaded at start-up)."""
