"""Models for the transfer experiments: Wide ResNet, GNMT-lite and Rosenbrock."""
