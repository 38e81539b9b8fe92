"""Routes beside the prediction contract, imported when first called: the OpenAPI document and
its schemas, Swagger UI from local assets, the form page, and the Open Inference Protocol V2."""
