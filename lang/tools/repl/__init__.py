"""The REPL (docs/reference.md §10), one module per job:

    core        execute(state, text) -> (state, output): the whole REPL, with no terminal
    session     the state, and the pipeline steps on it (declare, load, evaluate, `it`)
    commands    the command table (:type, :transform, :gradcheck, ...)
    completion  Tab completion: commands, names in scope, paths after :load
    tokens      the grammar's tokens, never failing: highlighting and when input continues
    lexer       the prompt_toolkit highlighter
    frontend    `dl repl`: the prompt_toolkit session, or plain lines when piped
"""
