"""Models for the transfer experiments (Wide ResNet, GNMT-lite, Rosenbrock) and the fused
batch-norm layer they and the proxy's child network share."""
