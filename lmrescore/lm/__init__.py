"""The language model: vocabularies and units, corpora and batches, cells, the sequential and
order-K fixed-point solvers, the model behind one LM interface, checkpoints, configs, perplexity."""
