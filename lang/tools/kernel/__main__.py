"""`python -m lang.tools.kernel -f CONNECTION_FILE`: what the installed kernelspec starts."""
from .kernel import launch

if __name__ == "__main__":
    launch()
