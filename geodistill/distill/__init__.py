"""geodistill.distill"""
