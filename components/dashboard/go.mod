// microkube's dashboard: standard library only, built by microkube/images/gobuild.py.
module microkube.local/dashboard

go 1.26
