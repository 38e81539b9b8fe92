"""`modelapi package lambda`: the zip (modules found by following imports, target wheels, byte
code for the target Python) and the SAM and Serverless templates beside it."""
