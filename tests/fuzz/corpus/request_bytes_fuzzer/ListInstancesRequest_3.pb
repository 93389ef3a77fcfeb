
demo$f97df110-f4de-492e-8849-4a6af68026b0"
tier
production(20Zjk3ZGYxMTAtZjRkZS00OTJlLTg4NDktNGE2YWY2ODAyNmIw