"""Process management: ranks, the shared process table, the prefork master and its children."""
