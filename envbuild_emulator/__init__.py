"""envbuild's local emulator: AWS behaviour on top of moto (never imported by functions/)."""
