"""PDFs of notes: ``render_pool`` renders in a process, ``filing`` (on the writer
thread) decides what needs a PDF and files what comes back. Same imports as ``writer``.
"""
