import torch

# Tests share two cores with each other and with other work: keep them single-threaded.
torch.set_num_threads(1)
