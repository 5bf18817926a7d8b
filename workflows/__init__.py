"""The bundled workflows (one YAML file each) and the catalog that lists them."""
