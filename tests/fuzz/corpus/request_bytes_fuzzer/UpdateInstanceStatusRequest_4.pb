
demo$f97df110-f4de-492e-8849-4a6af68026b0"booted