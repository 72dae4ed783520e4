"""geodistill.geometry"""
