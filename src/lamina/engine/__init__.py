"""How a Model runs (private to lamina): the execution plan of its layers and the fused
steps in it, the flat parameter arena, the sources of training batches, the training loop
and the rewinding of a diverged epoch. Nothing here is public API; ``Model`` is."""
