"""The small network the torch tests share (not a test module itself)."""
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    """The seeds' network: Linear-ReLU-Linear, trained with MSE and SGD."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 1)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
