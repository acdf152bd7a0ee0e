"""Models for the transfer experiments (Wide ResNet, GNMT-lite, Rosenbrock) and the fused
batch-norm layer that Wide ResNet and the proxy's child network normalize with."""
