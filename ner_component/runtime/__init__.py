"""What `spacy.load()` of a trained pipeline needs, apart from the project's tooling.

Every module here is also a `spacy package --code` file: the package step copies it
flat into the model wheel, which imports it as `<model package>.<module>`. So a module
here imports only spaCy, thinc, numpy, torch and spacy-transformers (no other module
of this folder, nothing of `ner_component`), and registering its names a second time
(the project and a model wheel in one environment) is harmless.
"""
# The --code files of a packaged pipeline, in import order.
RUNTIME_MODULES = ("transformer", "token_ner")
