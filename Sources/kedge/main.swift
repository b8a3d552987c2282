print("kedge")
